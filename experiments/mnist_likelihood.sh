#!/usr/bin/env bash
# A JMVAE MNIST likelihood run with its evidence (issue: reproduce JMVAE's -86.86 nats).
#  1. trains CONFIG into runs/NAME (or resumes it when runs/NAME holds a checkpoint);
#  2. evaluates the K = 1000 importance-weighted joint log p(image,label) on the 10,000 test
#     items for every checkpoint kept along the way (train.keep_checkpoints), and joint,
#     marginal and conditional estimates for the final model;
#  3. copies the evidence to experiments/results/NAME/: the command, `mmkt info` (machine,
#     threads, BLAS core, FTZ/DAZ), config.json, log.jsonl, summary.json, the eval reports
#     (JSON + Markdown) and curve.tsv (epoch, training seconds so far, joint nats). No checkpoints.
# Usage: NAME=mnist_jmvae_paper CONFIG=experiments/mnist_jmvae_paper.json THREADS=2 \
#          [STAGE=all|train|eval] [KEEP=50,100,200] [FINAL_ESTIMATES=joint] \
#          bash experiments/mnist_likelihood.sh [--set k=v ...]
# FINAL_ESTIMATES limits the final model's evaluation (default: every estimate, 873 s on 2
# threads for the fast recipe's seed 0, its eval/report.md; the joint alone 192-323 s a model there),
# e.g. for extra seeds of a recipe.
# Re-running after an interruption resumes training (exactly: same losses as without the stop)
# and skips evaluations whose reports already exist.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mmkt=${MMKT:-build/release/bin/mmkt}
name=${NAME:?NAME=...}
config=${CONFIG:?CONFIG=...}
threads=${THREADS:-2}
stage=${STAGE:-all}
run=runs/$name
out=experiments/results/$name
mkdir -p "$out"

extra=()
[ -n "${KEEP:-}" ] && extra+=(--set "train.keep_checkpoints=[${KEEP}]")
train_cmd=("$mmkt" --threads "$threads" train --config "$config" --run "$run" "${extra[@]}" "$@")
# A resume reads the run's own config.json (which already holds KEEP); --set may extend it.
resume_cmd=("$mmkt" --threads "$threads" train --run "$run" "$@" --resume)
# The environment that changes numbers or speed, written before the command in command.txt.
environment() {
  local vars
  vars=$(env | grep -E '^(OPENBLAS_CORETYPE|OPENBLAS_NUM_THREADS|OMP_NUM_THREADS|MMKT_[A-Z_]+)=' | sort | tr '\n' ' ')
  echo "env ${vars:-(no OPENBLAS_CORETYPE, OMP_NUM_THREADS or MMKT_* set)}"
}

if [ "$stage" = all ] || [ "$stage" = train ]; then
  "$mmkt" --threads "$threads" info > "$out/machine.json"
  if [ -f "$run/checkpoint.pt" ]; then
    echo "resuming $run"
    printf '# %s\n%s\n' "$(environment)" "${resume_cmd[*]}" >> "$out/command.txt"
    start=$(date +%s)
    "${resume_cmd[@]}" 2>&1 | tee -a "$out/train.log"
  else
    printf '%s\n# %s\n' "${train_cmd[*]}" "$(environment)" > "$out/command.txt"
    : > "$out/train.log"
    start=$(date +%s)
    "${train_cmd[@]}" 2>&1 | tee -a "$out/train.log"
  fi
  echo "train segment: $(( $(date +%s) - start )) s wall (started $(date -u -d @"$start" +%FT%TZ))" >> "$out/wall_time.txt"
  cp "$run/config.json" "$run/log.jsonl" "$run/summary.json" "$out/"
fi

if [ "$stage" = all ] || [ "$stage" = eval ]; then
  # Checkpoints kept along the way: the joint estimate only (the learning curve).
  for ckpt in $(ls "$run"/checkpoint_epoch*.pt 2>/dev/null | sort -V); do
    epoch=$(basename "$ckpt" .pt | sed 's/checkpoint_epoch//')
    dir=$out/eval_epoch$epoch
    [ -f "$dir/report.json" ] && continue
    mkdir -p "$dir"
    cmd=("$mmkt" --threads "$threads" eval --run "$run" --checkpoint "$(basename "$ckpt")"
         --metrics likelihood --estimates joint --k 1000 --out "$run/eval_epoch$epoch")
    echo "${cmd[*]}" > "$dir/command.txt"
    "${cmd[@]}" 2>&1 | tee "$dir/eval.log"
    cp "$run/eval_epoch$epoch"/report.{json,md} "$dir/"
  done
  if [ ! -f "$out/eval/report.json" ] && [ -f "$run/summary.json" ]; then
    mkdir -p "$out/eval"
    cmd=("$mmkt" --threads "$threads" eval --run "$run" --metrics likelihood --k 1000
         --out "$run/eval")
    [ -n "${FINAL_ESTIMATES:-}" ] && cmd+=(--estimates "$FINAL_ESTIMATES")
    echo "${cmd[*]}" > "$out/eval/command.txt"
    "${cmd[@]}" 2>&1 | tee "$out/eval/eval.log"
    cp "$run/eval"/report.{json,md} "$out/eval/"
  fi
  # The learning curve: epoch, training seconds up to that epoch (sum of log.jsonl), joint nats.
  python3 - "$out" <<'EOF'
import json, os, sys
out = sys.argv[1]
seconds, total = {}, 0.0
for line in open(os.path.join(out, "log.jsonl")):
    r = json.loads(line)
    total += r["seconds"]
    seconds[r["epoch"]] = total
last = max(seconds)
rows = []
for d in sorted(os.listdir(out)):
    path = os.path.join(out, d, "report.json")
    if not os.path.isfile(path) or not (d.startswith("eval_epoch") or d == "eval"):
        continue
    epoch = last if d == "eval" else int(d[len("eval_epoch"):])
    est = json.load(open(path))["likelihood"]["estimates"]["log p(image,label)"]
    rows.append((epoch, seconds.get(epoch, float("nan")), est["mean"], est["stderr"]))
with open(os.path.join(out, "curve.tsv"), "w") as f:
    f.write("# epoch\ttrain_seconds\tjoint_nats\tstderr\n")
    for r in sorted(set(rows)):
        f.write("%d\t%.1f\t%.3f\t%.3f\n" % r)
print(open(os.path.join(out, "curve.tsv")).read())
EOF
fi
