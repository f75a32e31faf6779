#!/usr/bin/env bash
# Data-parallel scaling on this machine, side by side in one run: JMVAE-kl on MNIST with the
# paper's architecture (experiments/mnist_jmvae_paper.json), global batch 100, 300 steps each:
#   1 process x 1 thread, 1 process x 2 threads, 2 workers (c10d/Gloo) x 1 thread.
# Prints a Markdown table of samples/s (all workers together) and communication ms per step
# (the bucketed gradient allreduce + the start-up broadcast, from summary.json).
# Usage: bash experiments/ddp_scaling.sh [STEPS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mmkt=build/release/bin/mmkt
steps=${1:-300}
out=runs/ddp_scaling
mkdir -p $out
field() { python3 -c "import json,sys; print(json.load(open('$1'))['$2'])"; }
common="--config experiments/mnist_jmvae_paper.json --set train.epochs=1 train.max_steps_per_epoch=$steps"
$mmkt --log-level warn --threads 1 train $common --run $out/p1t1 --overwrite > /dev/null
$mmkt --log-level warn --threads 2 train $common --run $out/p1t2 --overwrite > /dev/null
rm -rf $out/p2t1
$mmkt --log-level warn --threads 1 train --nproc 2 $common --run $out/p2t1 > /dev/null
python3 - $out <<'PY'
import json, sys
out = sys.argv[1]
rows = [("1 process x 1 thread", "p1t1"), ("1 process x 2 threads", "p1t2"),
        ("2 workers x 1 thread (Gloo)", "p2t1")]
s = {k: json.load(open(f"{out}/{k}/summary.json")) for _, k in rows}
base = s["p1t1"]["train_samples_per_second"]
print("| setting | samples/s | vs 1 x 1 | communication ms/step |")
print("| --- | ---: | ---: | ---: |")
for name, k in rows:
    r = s[k]["train_samples_per_second"]
    comm = s[k].get("communication_seconds_per_step", 0.0) * 1000
    print(f"| {name} | {r:.0f} | {r / base:.2f}x | {comm:.2f} |")
PY
