#!/usr/bin/env bash
# Reruns the first EPOCHS epochs of a committed run and compares its log with the committed
# log.jsonl line for line (every field but the wall-clock "seconds"): the same command, seed,
# thread count and BLAS kernels must give the same numbers.
# Usage: [EPOCHS=3] [THREADS=N] bash experiments/check_determinism.sh experiments/results/mnist_jmvae_fast
# THREADS reruns with another intra-op thread count than the committed one (to see whether the
# numbers depend on it). FLAGS adds global mmkt options, e.g. FLAGS=--keep-denormals to see that
# flushing denormals to zero leaves the learning curve unchanged (then "within float noise" is
# the claim: the script prints the largest relative difference of any logged number).
# The command is the first line of RESULTS/command.txt, run with --run in a scratch folder and
# stopped once EPOCHS epochs are logged (so schedules that depend on train.epochs are unchanged).
# Exit 0 when the lines agree, 1 otherwise. It checks OpenBLAS's core against RESULTS/machine.json
# first: other kernels round differently, and the logs then differ in the last digits.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
results=${1:?usage: check_determinism.sh RESULTS_DIR}
epochs=${EPOCHS:-3}
mmkt=${MMKT:-build/release/bin/mmkt}
scratch=$(mktemp -d /tmp/mmkt_determinism.XXXXXX)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$scratch"' EXIT

read -r -a cmd < <(head -n 1 "$results/command.txt")
threads=${THREADS:-$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["threads"])' "$results/machine.json")}
want_core=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("blas_core",""))' "$results/machine.json")
have_core=$("$mmkt" --threads "$threads" info --matmul-size 0 2>/dev/null |
            python3 -c 'import json,sys; print(json.load(sys.stdin).get("blas_core",""))')
if [ "$want_core" != "$have_core" ]; then
  echo "note: the committed run used OpenBLAS core '$want_core', this machine uses '$have_core';" \
       "expect differences in the last digits (run with OPENBLAS_CORETYPE=$want_core to match)"
fi
# Replace the run folder (the argument after --run) by the scratch folder.
for i in "${!cmd[@]}"; do
  [ "${cmd[$i]}" = --run ] && cmd[$((i + 1))]=$scratch/run
  [ "${cmd[$i]}" = --threads ] && cmd[$((i + 1))]=$threads
done
cmd[0]=$mmkt
# shellcheck disable=SC2206
flags=(${FLAGS:-})
"${cmd[0]}" "${flags[@]}" "${cmd[@]:1}" > "$scratch/train.log" 2>&1 &
pid=$!
log=$scratch/run/log.jsonl
while kill -0 "$pid" 2>/dev/null; do
  if [ -f "$log" ] && [ "$(wc -l < "$log")" -ge "$epochs" ]; then break; fi
  sleep 1
done
kill "$pid" 2>/dev/null || true
python3 - "$results/log.jsonl" "$log" "$epochs" <<'EOF'
import json, sys
committed, rerun, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def lines(path):
    out = []
    for line in open(path):
        r = json.loads(line)
        r.pop("seconds", None)
        out.append(json.dumps(r, sort_keys=True))
    return out[:n]
a, b = lines(committed), lines(rerun)
if len(b) < n:
    sys.exit("the rerun logged %d of %d epochs" % (len(b), n))
def numbers(j, prefix=""):
    if isinstance(j, dict):
        for k, v in j.items():
            yield from numbers(v, prefix + "." + k)
    elif isinstance(j, (int, float)):
        yield prefix, float(j)
worst = (0.0, "")
for x, y in zip(a, b):
    nx, ny = dict(numbers(json.loads(x))), dict(numbers(json.loads(y)))
    for k in nx:
        if k in ny and nx[k] != ny[k]:
            rel = abs(nx[k] - ny[k]) / max(abs(nx[k]), 1e-30)
            worst = max(worst, (rel, k))
print("largest relative difference: %.3g%s" % (worst[0], " (" + worst[1] + ")" if worst[1] else ""))
same = sum(x == y for x, y in zip(a, b))
for i, (x, y) in enumerate(zip(a, b)):
    print("epoch %d: %s" % (i + 1, "identical" if x == y else "DIFFERENT\n  committed %s\n  rerun     %s" % (x, y)))
print("%d of %d log lines identical (all fields but seconds)" % (same, n))
sys.exit(0 if same == n else 1)
EOF
