#!/usr/bin/env bash
# Antidistillation of a whole JMVAE on MNIST (image + label): a small JMVAE (every MLP 64 wide,
# experiments/antidistill_jmvae_small.json) trained for 10 epochs grows by Net2Net into the
# paper's architecture (512 wide, experiments/antidistill_jmvae.json) with `train.init_from`,
# computing the same function, and trains 10 more epochs; against the same large JMVAE from
# random initialisation for 10 epochs. Both large runs use the same recipe (Adam 1e-3, no KL
# warm-up: a warm-up would first undo the grown model's posterior). Judged on the 5000-item
# validation split's ELBO after every epoch (log.jsonl): the epochs and training seconds each
# start needs to reach the random start's final validation ELBO, and the final test ELBO.
# Usage: [SEEDS="0 1 2"] [THREADS=2] bash experiments/antidistill_jmvae.sh
# Writes experiments/results/antidistill_jmvae/ (commands, machine, logs, summaries, table.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mmkt=${MMKT:-build/release/bin/mmkt}
threads=${THREADS:-2}
seeds=${SEEDS:-0 1 2}
out=experiments/results/antidistill_jmvae
mkdir -p "$out"
"$mmkt" --threads "$threads" info > "$out/machine.json"
train() {  # name config extra...
  local name=$1 config=$2
  shift 2
  local run=runs/antidistill_jmvae_$name dest=$out/$name
  mkdir -p "$dest"
  if [ ! -f "$run/summary.json" ]; then
    local cmd=("$mmkt" --threads "$threads" train --config "$config" --run "$run" "$@" --overwrite)
    echo "${cmd[*]}" > "$dest/command.txt"
    local start
    start=$(date +%s)
    "${cmd[@]}" 2>&1 | tee "$dest/train.log"
    echo "$(( $(date +%s) - start )) s wall, $threads threads" > "$dest/wall_time.txt"
  fi
  cp "$run/config.json" "$run/log.jsonl" "$run/summary.json" "$dest/"
}
for seed in $seeds; do
  train small_s$seed experiments/antidistill_jmvae_small.json --set seed=$seed
  train random_s$seed experiments/antidistill_jmvae.json --set seed=$seed
  train grown_s$seed experiments/antidistill_jmvae.json --set seed=$seed \
    --set train.init_from=runs/antidistill_jmvae_small_s$seed
done
python3 - "$out" <<'PY'
import glob, json, os, statistics, sys
out = sys.argv[1]
def log(name):
    return [json.loads(l) for l in open(f"{out}/{name}/log.jsonl")]
def ms(v):
    return f"{statistics.mean(v):.2f} +- {statistics.stdev(v):.2f}" if len(v) > 1 else f"{v[0]:.2f}"
seeds = sorted(int(p.split("_s")[-1]) for p in glob.glob(f"{out}/random_s*"))
rows, reach = {}, {"random": [], "grown": []}
for s in seeds:
    target = log(f"random_s{s}")[-1]["validation"]["elbo"]
    for start in ["small", "random", "grown"]:
        lines = log(f"{start}_s{s}")
        r = rows.setdefault(start, {"val": {}, "test": [], "seconds": []})
        for l in lines:
            r["val"].setdefault(l["epoch"], []).append(l["validation"]["elbo"])
        summary = json.load(open(f"{out}/{start}_s{s}/summary.json"))
        r["test"].append(summary["test"]["elbo"])
        r["seconds"].append(sum(l["seconds"] for l in lines))
        if start in reach:
            t, hit = 0.0, None
            for l in lines:
                t += l["seconds"]
                if l["validation"]["elbo"] >= target:
                    hit = (l["epoch"], t)
                    break
            reach[start].append(hit)
params = {}
for start in ["small", "random", "grown"]:
    for line in open(f"{out}/{start}_s{seeds[0]}/train.log"):
        if "parameters, modalities" in line:
            params[start] = line.split("latent 64, ")[1].split(" parameters")[0]
epochs = sorted(rows["random"]["val"])
label = {"small": "small JMVAE (64 wide), from random init", "random": "large JMVAE (512 wide), random init",
         "grown": "large JMVAE (512 wide), grown from the small one"}
with open(f"{out}/table.md", "w") as md:
    md.write(f"Validation ELBO (nats, 5000 held-out training items) after each epoch, mean +- std over seeds {seeds}; "
             "test ELBO (10,000 items, single-sample bound) at the end; training seconds of the 10 epochs.\n\n")
    md.write("| model | params | " + " | ".join(f"epoch {e}" for e in epochs if e in (1, 2, 3, 5, 10)) + " | test ELBO | seconds |\n")
    md.write("| --- | ---: | " + " | ".join("---:" for e in epochs if e in (1, 2, 3, 5, 10)) + " | ---: | ---: |\n")
    for start in ["small", "random", "grown"]:
        r = rows[start]
        md.write(f"| {label[start]} | {params.get(start, '?')} | " + " | ".join(ms(r['val'][e]) for e in epochs if e in (1, 2, 3, 5, 10))
                 + f" | {ms(r['test'])} | {statistics.mean(r['seconds']):.0f} |\n")
    md.write("\nEpochs (and training seconds) until the validation ELBO reaches the random start's own final value, per seed:\n\n")
    md.write("| start | " + " | ".join(f"seed {s}" for s in seeds) + " |\n| --- | " + " | ".join("---:" for _ in seeds) + " |\n")
    for start in ["random", "grown"]:
        md.write(f"| {label[start]} | " + " | ".join("not within 10" if h is None else f"{h[0]} ({h[1]:.0f} s)" for h in reach[start]) + " |\n")
print(open(f"{out}/table.md").read())
PY
