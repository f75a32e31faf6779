#!/usr/bin/env bash
# Distillation from the strong Fashion-MNIST teacher, reported fairly (3 teacher seeds):
#   1. selection: on teacher seed 0, every candidate method (single methods and weighted
#      combinations) trains the same small student; the winner is the candidate with the best
#      *validation* score (seen-class validation items, never the test set):
#        score = mean(student image->image mAP cos, student image -> teacher text mAP cos);
#   2. comparison: the baseline (labels only), every single method and the chosen combination,
#      for each teacher seed (student seed = teacher seed), test figures as mean +- std (single
#      methods are evaluated on retrieval only; the baseline and the chosen method on everything:
#      retrieval, zero-shot, linear probe);
#   3. size sweep: the chosen method at 4 student sizes (1.7% to 25% of the teacher's conv image
#      encoder) for each seed, each beside a label-only student of its size: parameters, images/s
#      and the share of the teacher's figures kept.
# Teachers: experiments/fashion_strong2.json, seeds 0-2 (experiments/fashion_strong.sh).
# Every student's result.json holds both its validation and its test figures; the tables
# (summary.md / summary.json) are written by experiments/distill_strong_table.py.
#
# Usage: [TEACHERS="runs/fashion_strong2_s0 runs/fashion_strong2_s1 runs/fashion_strong2_s2"]
#        [STUDENT=conv:8:128] [SIZES="mlp:32 conv:8:128 conv:16:128 conv:16:256"] [EPOCHS=10]
#        [THREADS=2] [PARALLEL=1] [OUT=runs/distill_strong] [NAME=distill_strong]
#        bash experiments/distill_strong.sh
# Students are reused when their result.json exists, so an interrupted run resumes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
parallel=${PARALLEL:-1}  # students trained at once (each on THREADS threads)
mmkt="build/release/bin/mmkt --threads ${THREADS:-2}"
teachers=(${TEACHERS:-runs/fashion_strong2_s0 runs/fashion_strong2_s1 runs/fashion_strong2_s2})
student=${STUDENT:-conv:8:128}
sizes=(${SIZES:-mlp:32 conv:8:128 conv:16:128 conv:16:256})
epochs=${EPOCHS:-10}
out=${OUT:-runs/distill_strong}
name=${NAME:-distill_strong}
results=experiments/results/$name
candidates=(${CANDIDATES:-kd mse bayes pkt ce=1,mse=1 kd=1,mse=1 ce=1,bayes=0.1 kd=1,mse=3})
singles=(baseline kd gd hint pkt vid bayes mse)
mkdir -p "$out" "$results"
start=$(date +%s)

running=0
# distil TEACHER_INDEX FOLDER NET METHOD [teacher-metrics] [metrics]: one student into
# $out/FOLDER, queued (PARALLEL at once); skipped when its result.json exists.
distil() {
  local t=$1 dir="$out/$2" net=$3 method=$4 tm=${5:-false} metrics=${6:-retrieval,zeroshot,probe}
  if [ -f "$dir/result.json" ]; then return; fi
  # A teacher still training (started beside this script) has a checkpoint but no summary yet.
  while [ ! -f "${teachers[$t]}/summary.json" ]; do sleep 30; done
  echo "== seed $t: $2 ($net, $method)" >&2
  nice $mmkt --seed "$t" --log-level warn distill --teacher "${teachers[$t]}" --student "$net" \
    --method "$method" --epochs "$epochs" --teacher-metrics "$tm" --metrics "$metrics" \
    --out "$dir" > /dev/null &
  running=$((running + 1))
  if [ "$running" -ge "$parallel" ]; then wait -n; running=$((running - 1)); fi
}
drain() { wait; running=0; }
row_name() { local r=${1//[=,+]/_}; echo "${r//:/-}"; }

# 1. Selection on teacher seed 0 (validation figures only): retrieval alone, in a folder of its
#    own (the comparison below trains every row again with the full evaluation).
sel="$out/select"
for m in "${candidates[@]}"; do distil 0 "select/$(row_name "$m")" "$student" "$m" false retrieval; done
drain
chosen=$(python3 experiments/distill_strong_table.py choose "$sel" "${candidates[@]}")
echo "chosen on validation: $chosen" >&2
echo "$chosen" > "$results/chosen.txt"

# 2. The comparison at every teacher seed.
for t in "${!teachers[@]}"; do
  distil "$t" "s$t/baseline" "$student" baseline true
  # Single methods: retrieval (the figures the goals are about); the chosen combination: every
  # figure, like the baseline.
  for m in "${singles[@]:1}"; do
    [ "$m" = "$chosen" ] && continue
    distil "$t" "s$t/$(row_name "$m")" "$student" "$m" false retrieval
  done
  distil "$t" "s$t/$(row_name "$chosen")" "$student" "$chosen"
done

# 3. Student sizes with the chosen method (and the label-only baseline at each size).
for t in "${!teachers[@]}"; do
  for net in "${sizes[@]}"; do
    [ "$net" = "$student" ] && continue  # the comparison's own rows
    distil "$t" "s$t/size_$(row_name "$net")" "$net" "$chosen" false retrieval
    distil "$t" "s$t/size_$(row_name "$net")_baseline" "$net" baseline false retrieval
  done
done
drain

python3 experiments/distill_strong_table.py table "$out" "$results" "$chosen" "$student" \
  "${#teachers[@]}" "${singles[*]}" "${sizes[*]}"
for d in "$sel"/*/; do
  mkdir -p "$results/select/$(basename "$d")"
  cp "$d/result.json" "$d/result.md" "$results/select/$(basename "$d")/"
done
for t in "${!teachers[@]}"; do
  for d in "$out/s$t"/*/; do
    dest="$results/s$t/$(basename "$d")"
    mkdir -p "$dest"
    cp "$d/result.json" "$d/result.md" "$dest/" 2>/dev/null || true
  done
done
"${mmkt% --threads*}" info > "$results/machine.json"
echo "TEACHERS=\"${teachers[*]}\" STUDENT=$student SIZES=\"${sizes[*]}\" EPOCHS=$epochs bash experiments/distill_strong.sh" > "$results/command.txt"
echo "$(( $(date +%s) - start )) s wall (students reused from earlier runs are not counted), ${THREADS:-2} threads per student, $parallel students at once" > "$results/wall_time.txt"
