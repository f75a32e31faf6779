#!/usr/bin/env bash
# Distillation from the strong Fashion-MNIST teacher, reported fairly (3 teacher seeds):
#   1. selection: on teacher seed 0, every candidate method (single methods and weighted
#      combinations) trains the same small student; the winner is the candidate with the best
#      *validation* score (seen-class validation items, never the test set):
#        score = mean(student image->image mAP cos, student image -> teacher text mAP cos);
#   2. comparison: the baseline (labels only), every single method and the chosen combination,
#      for each teacher seed (student seed = teacher seed), test figures as mean +- std;
#   3. size sweep: the chosen method at 4 student sizes (about 2% to 30% of the teacher's image
#      encoder) for each seed: parameters, images/s and the share of the teacher's figures kept.
# Every student's result.json holds both its validation and its test figures; the tables
# (summary.md / summary.json) are written by experiments/distill_strong_table.py.
#
# Usage: [TEACHERS="runs/fashion_strong_cnn_s0 runs/fashion_strong_cnn_s1 runs/fashion_strong_cnn_s2"]
#        [STUDENT=mlp:64] [SIZES="mlp:32 mlp:128 conv:16:128 mlp:512,256"] [EPOCHS=20]
#        [THREADS=2] [OUT=runs/distill_strong] [NAME=distill_strong] bash experiments/distill_strong.sh
# Students are reused when their result.json exists, so an interrupted run resumes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mmkt="build/release/bin/mmkt --threads ${THREADS:-2}"
teachers=(${TEACHERS:-runs/fashion_strong_cnn_s0 runs/fashion_strong_cnn_s1 runs/fashion_strong_cnn_s2})
student=${STUDENT:-mlp:64}
sizes=(${SIZES:-mlp:32 mlp:128 conv:16:128 mlp:512,256})
epochs=${EPOCHS:-20}
out=${OUT:-runs/distill_strong}
name=${NAME:-distill_strong}
results=experiments/results/$name
candidates=(${CANDIDATES:-kd mse bayes pkt hint vid gd ce=1,mse=1 kd=1,mse=1 ce=1,bayes=0.1 kd=1,mse=0.3 kd=1,mse=3})
singles=(baseline kd gd hint pkt vid bayes mse)
mkdir -p "$out" "$results"
start=$(date +%s)

distil() {  # distil TEACHER_INDEX ROW NET METHOD [teacher-metrics]
  local t=$1 row=$2 net=$3 method=$4 tm=${5:-false}
  local dir="$out/s$t/$row"
  if [ -f "$dir/result.json" ]; then return; fi
  echo "== seed $t: $row ($net, $method)" >&2
  $mmkt --seed "$t" --log-level warn distill --teacher "${teachers[$t]}" --student "$net" \
    --method "$method" --epochs "$epochs" --teacher-metrics "$tm" --out "$dir" > /dev/null
}
row_name() { local r=${1//[=,+]/_}; echo "${r//:/-}"; }

# 1. Selection on teacher seed 0 (validation figures only).
distil 0 baseline "$student" baseline true
for m in "${candidates[@]}"; do distil 0 "$(row_name "$m")" "$student" "$m"; done
chosen=$(python3 experiments/distill_strong_table.py choose "$out/s0" "${candidates[@]}")
echo "chosen on validation: $chosen" >&2
echo "$chosen" > "$results/chosen.txt"

# 2. The comparison at every teacher seed.
for t in "${!teachers[@]}"; do
  distil "$t" baseline "$student" baseline true
  for m in "${singles[@]:1}" "$chosen"; do distil "$t" "$(row_name "$m")" "$student" "$m"; done
done

# 3. Student sizes with the chosen method (and the label-only baseline at each size).
for t in "${!teachers[@]}"; do
  for net in "${sizes[@]}"; do
    distil "$t" "size_$(row_name "$net")" "$net" "$chosen"
    distil "$t" "size_$(row_name "$net")_baseline" "$net" baseline
  done
done

python3 experiments/distill_strong_table.py table "$out" "$results" "$chosen" "$student" \
  "${#teachers[@]}" "${singles[*]}" "${sizes[*]}"
for t in "${!teachers[@]}"; do
  for d in "$out/s$t"/*/; do
    dest="$results/s$t/$(basename "$d")"
    mkdir -p "$dest"
    cp "$d/result.json" "$d/result.md" "$dest/" 2>/dev/null || true
  done
done
"${mmkt% --threads*}" info > "$results/machine.json"
echo "TEACHERS=\"${teachers[*]}\" STUDENT=$student SIZES=\"${sizes[*]}\" EPOCHS=$epochs bash experiments/distill_strong.sh" > "$results/command.txt"
echo "$(( $(date +%s) - start )) s wall (students reused from earlier runs are not counted), ${THREADS:-2} threads" > "$results/wall_time.txt"
