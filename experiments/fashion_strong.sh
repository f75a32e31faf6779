#!/usr/bin/env bash
# The strong Fashion-MNIST recipe (experiments/fashion_strong.json) over 3 seeds, with evidence:
#   1. trains runs/fashion_strong_s<SEED> for each seed (skipped when its summary.json exists);
#   2. evaluates retrieval on the validation split (seen classes; what recipes are chosen on)
#      and retrieval + zero-shot on the test set (seen-, unseen-class and all queries; DAP, IAP,
#      text, generated and their calibrated-stacking rows);
#   3. copies the evidence to experiments/results/fashion_strong/seed<SEED>/ and writes
#      summary.{json,md}: mean +- std over the seeds of the headline figures and the test ELBO.
# Usage: [SEEDS="0 1 2"] [THREADS=2] [CONFIG=experiments/fashion_strong.json] [NAME=fashion_strong]
#        bash experiments/fashion_strong.sh
# NAME names the runs (runs/<NAME>_s<SEED>) and the results folder (experiments/results/<NAME>/),
# so that a variant of the recipe (CONFIG) keeps its own evidence.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mmkt=${MMKT:-build/release/bin/mmkt}
threads=${THREADS:-2}
seeds=${SEEDS:-0 1 2}
config=${CONFIG:-experiments/fashion_strong.json}
name=${NAME:-fashion_strong}
out=experiments/results/$name
mkdir -p "$out"
"$mmkt" --threads "$threads" info > "$out/machine.json"
for seed in $seeds; do
  run=runs/${name}_s$seed
  dest=$out/seed$seed
  mkdir -p "$dest"
  train_cmd=("$mmkt" --threads "$threads" train --config "$config" --run "$run" --set "seed=$seed")
  if [ ! -f "$run/summary.json" ]; then
    echo "${train_cmd[*]}" > "$dest/command.txt"
    start=$(date +%s)
    "${train_cmd[@]}" 2>&1 | tee "$dest/train.log"
    echo "training: $(( $(date +%s) - start )) s wall, $threads threads" > "$dest/wall_time.txt"
  fi
  if [ ! -f "$run/eval_validation/report.json" ]; then
    "$mmkt" --threads "$threads" eval --run "$run" --split validation --metrics retrieval > "$dest/eval_validation.log" 2>&1
  fi
  if [ ! -f "$run/eval/report.json" ]; then
    "$mmkt" --threads "$threads" eval --run "$run" --metrics retrieval,zeroshot > "$dest/eval.log" 2>&1
  fi
  cp "$run/config.json" "$run/log.jsonl" "$run/summary.json" "$dest/"
  mkdir -p "$dest/eval_validation" "$dest/eval"
  cp "$run/eval_validation/report."{json,md} "$dest/eval_validation/"
  cp "$run/eval/report."{json,md} "$dest/eval/"
done
python3 - "$out" "$config" $seeds <<'PY'
import json, statistics, sys
out, config, seeds = sys.argv[1], sys.argv[2], sys.argv[3:]
def figures(seed):
    d = f"{out}/seed{seed}"
    test = json.load(open(f"{d}/eval/report.json"))
    val = json.load(open(f"{d}/eval_validation/report.json"))
    summary = json.load(open(f"{d}/summary.json"))
    f = {"test ELBO": summary["test_elbo"]}
    for task in ["text->image", "image->image", "image->text"]:
        for score in ["cosine", "euclidean"]:
            r = test["retrieval"][task][score]
            f[f"{task} mAP {score}, all"] = r["mAP"]
            for g in ["seen", "unseen"]:
                f[f"{task} mAP {score}, {g}"] = r["groups"][g]["mAP"]
            f[f"{task} mAP {score}, validation (seen)"] = val["retrieval"][task][score]["mAP"]
    z = test["zeroshot"]
    for m in ["dap", "iap", "text", "generated"]:
        for v in [m, m + "+cs"]:
            if v in z:
                for k in ["zsl", "u", "s", "H"]:
                    if v.endswith("+cs") and k == "zsl":
                        continue
                    f[f"zero-shot {v} {k}"] = z[v][k]
    return f
rows = [figures(s) for s in seeds]
agg = {}
for k in rows[0]:
    vals = [r[k] for r in rows if k in r]
    agg[k] = {"mean": statistics.mean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
              "values": vals}
json.dump({"seeds": seeds, "figures": agg}, open(f"{out}/summary.json", "w"), indent=2)
with open(f"{out}/summary.md", "w") as md:
    md.write(f"Fashion-MNIST, {config}, seeds {', '.join(seeds)}: mean +- std\n\n")
    md.write("| figure | mean | std | per seed |\n| --- | ---: | ---: | --- |\n")
    for k, v in agg.items():
        md.write(f"| {k} | {v['mean']:.3f} | {v['std']:.3f} | {', '.join(f'{x:.3f}' for x in v['values'])} |\n")
print(open(f"{out}/summary.md").read())
PY
