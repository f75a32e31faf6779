#!/usr/bin/env bash
# mmkt against PyTorch on the same JMVAE-kl training step (MNIST paper architecture, batch 100,
# Adam), same threads, same machine, in turn: 3 rounds of `mmkt bench --part train-mnist` and
# experiments/baselines/jmvae_step.py (Debian's python3-torch 1.13: the same ATen/OpenBLAS
# kernels as the libtorch mmkt links). Prints the samples/s of both and the ratio.
# Usage: bash experiments/bench_vs_pytorch.sh [THREADS]   (default: all cores)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
threads=${1:-$(nproc)}
mmkt=build/release/bin/mmkt
python=/usr/bin/python3
if ! $python -c "import torch" 2> /dev/null; then
  echo "PyTorch for $python is missing: apt-get install python3-torch" >&2
  exit 2
fi
out=runs/bench_vs_pytorch
mkdir -p $out
for round in 1 2 3; do
  $mmkt --threads "$threads" --log-level warn bench --part train-mnist --repeats 5 --steps 20 \
    --out $out/mmkt_$round --json > /dev/null
  $python experiments/baselines/jmvae_step.py --threads "$threads" --repeats 5 --steps 20 \
    > $out/pytorch_$round.json
done
python3 - "$out" "$threads" <<'PY'
import json, statistics, sys
out, threads = sys.argv[1], sys.argv[2]
m = [json.load(open(f"{out}/mmkt_{r}/bench.json"))["train_mnist"] for r in (1, 2, 3)]
p = [json.load(open(f"{out}/pytorch_{r}.json")) for r in (1, 2, 3)]
mm = statistics.median(x["median"] for x in m)
pm = statistics.median(x["samples_per_second"] for x in p)
peak = statistics.median(json.load(open(f"{out}/mmkt_{r}/bench.json"))["matmul_1024_gflops"] for r in (1, 2, 3))
print(f"JMVAE-kl training step, MNIST paper architecture, batch 100, {threads} threads (median of 3 rounds x 5 timings)")
print("| implementation | samples/s | rounds |")
print("| --- | ---: | --- |")
mr = ", ".join("%.0f" % x["median"] for x in m)
pr = ", ".join("%.0f" % x["samples_per_second"] for x in p)
version = p[0]["implementation"].split()[-1]
print(f"| mmkt (libtorch C++) | {mm:.0f} | {mr} |")
print(f"| PyTorch {version} (Python) | {pm:.0f} | {pr} |")
print(f"\nratio mmkt / PyTorch: {mm / pm:.2f}x; mmkt step: {statistics.median(x['gflops'] for x in m):.1f} GFLOP/s "
      f"= {100 * statistics.median(x['share_of_matmul_peak'] for x in m):.0f}% of the 1024^3 matmul peak ({peak:.1f} GFLOP/s)")
PY
