#!/usr/bin/env bash
# mmkt against PyTorch on the same JMVAE-kl training step (MNIST paper architecture, batch 100,
# Adam), same threads, same machine, in turn: 3 rounds of `mmkt bench --part train-mnist` and
# experiments/baselines/jmvae_step.py (Debian's python3-torch 1.13: the same ATen/OpenBLAS
# kernels as the libtorch mmkt links). Prints the samples/s of both and the ratio.
# Two more rows separate what the gain is made of: PyTorch run with the glibc malloc settings
# mmkt applies at start-up (lib/core/runtime.cpp), and mmkt with them switched off.
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
  MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=67108864 \
    $python experiments/baselines/jmvae_step.py --threads "$threads" --repeats 5 --steps 20 \
    > $out/pytorch_malloc_$round.json
  MMKT_GLIBC_MALLOC=default $mmkt --threads "$threads" --log-level warn bench --part train-mnist \
    --repeats 5 --steps 20 --out $out/mmkt_default_malloc_$round --json > /dev/null
done
python3 - "$out" "$threads" <<'PY'
import json, statistics, sys
out, threads = sys.argv[1], sys.argv[2]
m = [json.load(open(f"{out}/mmkt_{r}/bench.json"))["train_mnist"] for r in (1, 2, 3)]
md = [json.load(open(f"{out}/mmkt_default_malloc_{r}/bench.json"))["train_mnist"] for r in (1, 2, 3)]
ma = [json.load(open(f"{out}/mmkt_{r}/bench.json"))["train_mnist_reference_adam"] for r in (1, 2, 3)]
p = [json.load(open(f"{out}/pytorch_{r}.json")) for r in (1, 2, 3)]
pa = [json.load(open(f"{out}/pytorch_malloc_{r}.json")) for r in (1, 2, 3)]
for x in p + pa:
    x["median"] = x["samples_per_second"]
med = lambda rows: statistics.median(x["median"] for x in rows)
rounds = lambda rows: ", ".join("%.0f" % x["median"] for x in rows)
mm, pm, pam = med(m), med(p), med(pa)
peak = statistics.median(json.load(open(f"{out}/mmkt_{r}/bench.json"))["matmul_1024_gflops"] for r in (1, 2, 3))
version = p[0]["implementation"].split()[-1]
print(f"JMVAE-kl training step, MNIST paper architecture, batch 100, {threads} threads (median of 3 rounds x 5 timings)")
print("| implementation | samples/s | rounds |")
print("| --- | ---: | --- |")
print(f"| mmkt (libtorch C++, FusedAdam, glibc malloc tuned) | {mm:.0f} | {rounds(m)} |")
print(f"| mmkt, libtorch's Adam + zero_grad() (same process as above) | {med(ma):.0f} | {rounds(ma)} |")
print(f"| mmkt, MMKT_GLIBC_MALLOC=default | {med(md):.0f} | {rounds(md)} |")
print(f"| PyTorch {version} (Python) | {pm:.0f} | {rounds(p)} |")
print(f"| PyTorch {version} (Python), mmkt's malloc settings | {pam:.0f} | {rounds(pa)} |")
print(f"\nratio mmkt / PyTorch: {mm / pm:.2f}x (with mmkt's malloc settings for both: {mm / pam:.2f}x)")
print(f"mmkt step: {statistics.median(x['gflops'] for x in m):.1f} GFLOP/s "
      f"= {100 * statistics.median(x['share_of_matmul_peak'] for x in m):.0f}% of the 1024^3 matmul peak ({peak:.1f} GFLOP/s)")
PY
