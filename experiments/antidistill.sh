#!/usr/bin/env bash
# Antidistillation: a small image student grows into a large one, `mmkt transfer --method
# antidistill` (lib/transfer/antidistill.h). For each seed a small student learns from the
# teacher run; then the large student, for each epoch count, starts three ways: random init,
# grown from the small one by Net2Net (function-preserving), and random init learning from the
# small one instead of the teacher. Every student is evaluated like any `mmkt distill` student.
# result.{json,md}: mean +- std over seeds, the epochs and training seconds at which each start
# reaches the random start's final quality, and the training-loss curves.
#   Fashion-MNIST (~20 minutes alone, after the teacher):
#     TEACHER=runs/fashion_strong_conv_s0 bash experiments/antidistill.sh
#   shapes level 2, conv students (~13 minutes alone, after the teacher):
#     TEACHER=runs/shapes_l2_jmvae_s1 CONFIG=experiments/antidistill_shapes.json NAME=antidistill_shapes \
#       bash experiments/antidistill.sh
# A teacher: `mmkt train --config experiments/fashion_strong_conv.json --run runs/fashion_strong_conv_s0`,
# or a shapes run of experiments/shapes_levels.sh. Students already trained under runs/<NAME>/
# are reused (an interrupted experiment resumes).
# Usage: TEACHER=RUN [CONFIG=experiments/antidistill_fashion.json] [NAME=antidistill_fashion]
#        [THREADS=2] [EXTRA="--set seeds=[0]"] bash experiments/antidistill.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mmkt=${MMKT:-build/release/bin/mmkt}
threads=${THREADS:-2}
teacher=${TEACHER:?set TEACHER to a trained run}
config=${CONFIG:-experiments/antidistill_fashion.json}
name=${NAME:-antidistill_fashion}
extra=${EXTRA:-}
out=experiments/results/$name
work=${WORK:-runs/$name}
mkdir -p "$out" "$work"
"$mmkt" --threads "$threads" info > "$out/machine.json"
# shellcheck disable=SC2206
cmd=("$mmkt" --threads "$threads" transfer --method antidistill --config "$config"
     --set "teacher=$teacher" --out "$work" $extra)
echo "${cmd[*]}" > "$out/command.txt"
start=$(date +%s)
"${cmd[@]}" 2>&1 | tee "$out/transfer.log"
echo "$(( $(date +%s) - start )) s wall, $threads threads" > "$out/wall_time.txt"
cp "$work/config.json" "$work/result.json" "$work/result.md" "$out/"
for d in "$work"/s*/*/; do
  dest=$out/$(basename "$(dirname "$d")")/$(basename "$d")
  mkdir -p "$dest"
  cp "$d/result.json" "$d/result.md" "$d/log.jsonl" "$dest/"
done
