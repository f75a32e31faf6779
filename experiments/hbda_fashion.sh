#!/usr/bin/env bash
# A shared hierarchical prior across domains (Finkel and Manning 2009) on Fashion-MNIST:
# `mmkt transfer --method hbda` with experiments/hbda_fashion.json. The source domain is the
# clean training split (1000 items per class); the three target domains are mmkt's covariate
# shifts rotation:3 (45 degrees), noise:4 (sigma 0.4) and blur:3 (sigma 1.5) of other training
# images, with 10, 100 or 1000 items per class. Image students (mlp:256) trained six ways
# (source only, separate, pooled, fine-tuned from pooled, hbda over a lambda_d grid, hbda with
# a lambda_d per domain), each judged on the target's 10,000 shifted test images at the step of
# best validation accuracy (20 validation items per class per target). 3 seeds. (3031 s on 2
# cores shared with the test suite; about 25-30 minutes alone, estimated from the five-method
# run's 1443 s.)
# The same script runs the Fashion-MNIST -> user-photo pair (one target, photo:1: every item as
# a user's photo file, grey, tinted or a product shot on a light background, 28-120 px,
# PNG/JPEG/BMP, read back like a manifest item; ~10 minutes alone):
#   CONFIG=experiments/hbda_fashion_photo.json NAME=hbda_fashion_photo bash experiments/hbda_fashion.sh
# Shapes levels as domains (the shape as a 5-class label at every level, 24 px): source
# shapes:3 (shape, size, colour vary), targets shapes:4 (+ position) and shapes:5 (+ background
# texture):
#   CONFIG=experiments/hbda_shapes.json NAME=hbda_shapes bash experiments/hbda_fashion.sh   (THREADS=1: 515 s beside two other jobs)
# Usage: [THREADS=2] [CONFIG=...] [NAME=...] [EXTRA="--set seeds=[0]"] bash experiments/hbda_fashion.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mmkt=${MMKT:-build/release/bin/mmkt}
threads=${THREADS:-2}
extra=${EXTRA:-}
config=${CONFIG:-experiments/hbda_fashion.json}
name=${NAME:-hbda_fashion}
out=experiments/results/$name
work=${WORK:-runs/$name}
mkdir -p "$out" "$work"
"$mmkt" --threads "$threads" info > "$out/machine.json"
# shellcheck disable=SC2206
cmd=("$mmkt" --threads "$threads" transfer --method hbda --config "$config"
     --out "$work" $extra)
echo "${cmd[*]}" > "$out/command.txt"
start=$(date +%s)
"${cmd[@]}" 2>&1 | tee "$out/transfer.log"
echo "$(( $(date +%s) - start )) s wall, $threads threads" > "$out/wall_time.txt"
cp "$work/config.json" "$work/result.json" "$work/result.md" "$work/log.jsonl" "$out/"
