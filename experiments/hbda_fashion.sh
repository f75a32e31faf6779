#!/usr/bin/env bash
# A shared hierarchical prior across domains (Finkel and Manning 2009) on Fashion-MNIST:
# `mmkt transfer --method hbda` with experiments/hbda_fashion.json. The source domain is the
# clean training split (1000 items per class); the three target domains are mmkt's covariate
# shifts rotation:3 (45 degrees), noise:4 (sigma 0.4) and blur:3 (sigma 1.5) of other training
# images, with 10, 100 or 1000 items per class. Image students (mlp:256) trained five ways
# (source only, separate, pooled, fine-tuned from pooled, hbda over a lambda_d grid), each
# judged on the target's 10,000 shifted test images at the step of best validation accuracy
# (20 validation items per class per target). 3 seeds. (~20-25 minutes on 2 cores alone.)
# Usage: [THREADS=2] [EXTRA="--set seeds=[0]"] bash experiments/hbda_fashion.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mmkt=${MMKT:-build/release/bin/mmkt}
threads=${THREADS:-2}
extra=${EXTRA:-}
out=experiments/results/hbda_fashion
work=${WORK:-runs/hbda_fashion}
mkdir -p "$out" "$work"
"$mmkt" --threads "$threads" info > "$out/machine.json"
# shellcheck disable=SC2206
cmd=("$mmkt" --threads "$threads" transfer --method hbda --config experiments/hbda_fashion.json
     --out "$work" $extra)
echo "${cmd[*]}" > "$out/command.txt"
start=$(date +%s)
"${cmd[@]}" 2>&1 | tee "$out/transfer.log"
echo "$(( $(date +%s) - start )) s wall, $threads threads" > "$out/wall_time.txt"
cp "$work/config.json" "$work/result.json" "$work/result.md" "$work/log.jsonl" "$out/"
