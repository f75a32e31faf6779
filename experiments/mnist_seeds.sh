#!/usr/bin/env bash
# The fast MNIST recipe over seeds: mean +- std (sample std over seeds) of the K = 1000 joint
# log p(image,label) at every epoch that all runs evaluated, each run's training minutes to reach it,
# and each run's own row, from experiments/results/NAME/curve.tsv (written by
# experiments/mnist_likelihood.sh) for NAME in mnist_jmvae_fast (seed 0), mnist_jmvae_fast_s1,
# mnist_jmvae_fast_s2.
# Usage: bash experiments/mnist_seeds.sh [NAME ...]
#   -> experiments/results/mnist_jmvae_fast_seeds/{seeds.json,seeds.md}
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
names=("$@")
((${#names[@]})) || names=(mnist_jmvae_fast mnist_jmvae_fast_s1 mnist_jmvae_fast_s2)
out=experiments/results/mnist_jmvae_fast_seeds
mkdir -p "$out"
python3 - "$out" "${names[@]}" <<'EOF'
import json, math, os, sys

out, names = sys.argv[1], sys.argv[2:]
PAPER = -86.86

def mean_std(values):
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, float("nan")
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))

runs = []
for name in names:
    d = os.path.join("experiments/results", name)
    curve = {}
    for line in open(os.path.join(d, "curve.tsv")):
        if line.startswith("#"):
            continue
        epoch, seconds, nats, stderr = line.split()
        curve[int(epoch)] = (float(seconds), float(nats), float(stderr))
    machine = json.load(open(os.path.join(d, "machine.json")))
    config = json.load(open(os.path.join(d, "config.json")))
    # The first epoch whose evaluation reaches the paper's figure (checkpoints are sparse, so
    # this is an upper bound on the time to reach it).
    reached = next(((e, curve[e][0]) for e in sorted(curve) if curve[e][1] >= PAPER), None)
    runs.append({"name": name, "seed": config.get("seed", 0), "threads": machine["threads"],
                 "blas_core": machine.get("blas_core", ""), "curve": curve,
                 "first_eval_at_or_above_paper": reached})

common = sorted(set.intersection(*(set(r["curve"]) for r in runs)))
rows = []
for e in common:
    nats = [r["curve"][e][1] for r in runs]
    minutes = [r["curve"][e][0] / 60 for r in runs]
    # Minutes are given run by run: runs with other thread counts or sharing the cores are
    # not samples of one timing.
    rows.append({"epoch": e, "nats": mean_std(nats), "minutes_per_run": minutes,
                 "per_run": nats})

fmt = lambda ms: "%.2f" % ms[0] if math.isnan(ms[1]) else "%.2f +- %.2f" % ms
lines = ["K = 1000 joint log p(image,label) on the 10,000 MNIST test items, fast recipe, %d seeds"
         % len(runs), "",
         "| epoch | training minutes, each run | nats, mean +- std over seeds | %s |"
         % " | ".join("seed %d (%d thr.)" % (r["seed"], r["threads"]) for r in runs),
         "| ---: | ---: | ---: | %s |" % " | ".join("---:" for _ in runs)]
for row in rows:
    lines.append("| %d | %s | %s | %s |" % (row["epoch"], " / ".join("%.1f" % m for m in row["minutes_per_run"]), fmt(row["nats"]),
                 " | ".join("%.2f" % v for v in row["per_run"])))
lines.append("")
for r in runs:
    reached = r["first_eval_at_or_above_paper"]
    lines.append("- %s (seed %d, %d threads, OpenBLAS %s): %s" % (
        r["name"], r["seed"], r["threads"], r["blas_core"],
        "first evaluation at or above -86.86: epoch %d, %.1f training minutes" % (reached[0], reached[1] / 60)
        if reached else "no evaluation at or above -86.86"))
text = "\n".join(lines) + "\n"
open(os.path.join(out, "seeds.md"), "w").write(text)
json.dump({"paper_nats": PAPER,
           "runs": [{k: v for k, v in r.items() if k != "curve"} |
                    {"curve": {str(e): {"train_seconds": s, "nats": n, "stderr": se}
                               for e, (s, n, se) in sorted(r["curve"].items())}} for r in runs],
           "common_epochs": [{"epoch": row["epoch"], "nats_mean": row["nats"][0],
                              "nats_std": row["nats"][1],
                              "training_minutes_per_run": row["minutes_per_run"],
                              "nats_per_run": row["per_run"]}
                             for row in rows]},
          open(os.path.join(out, "seeds.json"), "w"), indent=2)
print(text)
EOF
