#!/usr/bin/env bash
# The deep weight prior (Atanov et al. 2019) and DWP for distillation (Kolesov 2022) on
# Fashion-MNIST: `mmkt transfer --method dwp` with experiments/dwp_fashion.json.
#   prior source: 3 conv nets (16/32 channels, 5x5) trained on MNIST digits; one kernel VAE per
#   layer fitted to their kernels. Teacher: a 32/64-channel net trained on all 60,000
#   Fashion-MNIST training images; its kernels give the distillation variant's prior.
#   students (16/32 channels) on 50, 100, 500, 1000 items per class, 600 steps, five ways:
#   random init, DWP init, DWP prior (VI, beta chosen on validation), KD from the teacher,
#   DWP (teacher prior) + KD. 3 seeds. Test accuracy at the best validation step, and the
#   learning curves (accuracy on 2000 test items every 50 steps, mean over seeds) as a PNG.
# The VI baseline under a standard-normal prior (the same q(w) and beta grid, KL to N(0, I)),
# beside random init on the same splits (~13 min alone):
#   CONFIG=experiments/dwp_fashion_vi_normal.json NAME=dwp_fashion_vi_normal bash experiments/dwp_fashion.sh
# Shapes (the shape as a 5-class label; prior from level-1 networks, students on level 4, 32 px):
#   CONFIG=experiments/dwp_shapes.json NAME=dwp_shapes TITLE='Shapes level 4' bash experiments/dwp_fashion.sh
# Usage: [THREADS=2] [CONFIG=...] [NAME=...] [TITLE=...] [YRANGE=0.4:0.95] [EXTRA="--set seeds=[0]"]
#        bash experiments/dwp_fashion.sh   (~25 min alone)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mmkt=${MMKT:-build/release/bin/mmkt}
threads=${THREADS:-2}
extra=${EXTRA:-}
config=${CONFIG:-experiments/dwp_fashion.json}
name=${NAME:-dwp_fashion}
title=${TITLE:-Fashion-MNIST}
yrange=${YRANGE:-0.4:0.95}
out=experiments/results/$name
work=${WORK:-runs/$name}
mkdir -p "$out" "$work"
if [ -z "${PLOT_ONLY:-}" ]; then
  "$mmkt" --threads "$threads" info > "$out/machine.json"
  # shellcheck disable=SC2206
  cmd=("$mmkt" --threads "$threads" transfer --method dwp --config "$config"
       --out "$work" $extra)
  echo "${cmd[*]}" > "$out/command.txt"
  start=$(date +%s)
  "${cmd[@]}" 2>&1 | tee "$out/transfer.log"
  echo "$(( $(date +%s) - start )) s wall, $threads threads" > "$out/wall_time.txt"
  cp "$work/config.json" "$work/result.json" "$work/result.md" "$work/curves.tsv" "$out/"
fi
# Learning curves: one panel per training-set size, a line per method.
tsv=$out/curves.tsv
sizes=$(awk '!/^#/ {print $1}' "$tsv" | sort -n | uniq)
methods=$(awk -F'\t' '!/^#/ {print $2}' "$tsv" | awk '!seen[$0]++')
script="set terminal pngcairo size 1200,900 font ',10'
set output '$out/curves.png'
set multiplot layout 2,2 title '$title conv students: test accuracy while training (curve items), mean over seeds'
set grid
set key bottom right
set xlabel 'step'
set ylabel 'accuracy'
set yrange [$yrange]"
for n in $sizes; do
  plots=()
  for m in $methods; do
    plots+=("'< awk -F\"\\t\" \"\\\$1==$n && \\\$2==\\\"$m\\\"\" $tsv' using 3:4 with linespoints pt 7 ps 0.5 lw 2 title '$m'")
  done
  joined=$(IFS=,; echo "${plots[*]}")
  script+="
set title '$n items per class'
plot $joined"
done
script+="
unset multiplot"
gnuplot <<< "$script"
echo "wrote $out/curves.png"
