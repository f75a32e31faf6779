#!/usr/bin/env bash
# Antidistillation on Fashion-MNIST: a small image student grows into a large one.
# For each seed:
#   small     mlp:32 learns from the teacher (bayes: KL to the teacher's joint posterior, so its
#             embeddings live in the teacher's latent space), SMALL_EPOCHS epochs;
#   then, for E in EPOCH_LIST, the large student (LARGE, default mlp:512,512) with the same
#   method for E epochs, started three ways:
#     random      from random initialisation;
#     grown       from the small student grown by Net2Net (function-preserving: at epoch 0 it
#                 computes exactly what the small one computes; lib/distill/net2net.h);
#     from small  from random initialisation, learning from the small student instead of the
#                 teacher (the large model distilled from the small one).
# Every student is evaluated like any `mmkt distill` student (retrieval against the teacher's
# text embeddings, image->image, zero-shot, probe). summary.{json,md}: mean +- std over seeds of
# each row, the epochs and training seconds at which each start first reaches the random-init
# large student's final quality, and the training-loss curves.
# Usage: TEACHER=runs/fashion_strong_conv_s0 [SEEDS="0 1 2"] [EPOCH_LIST="1 3 9"] [THREADS=2]
#        bash experiments/antidistill_fashion.sh      (~20 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mmkt=${MMKT:-build/release/bin/mmkt}
threads=${THREADS:-2}
teacher=${TEACHER:?set TEACHER to a trained Fashion-MNIST run}
seeds=${SEEDS:-0 1 2}
epoch_list=${EPOCH_LIST:-1 3 9}
small=${SMALL:-mlp:32}
large=${LARGE:-mlp:512,512}
small_epochs=${SMALL_EPOCHS:-20}
method=${METHOD:-bayes}
work=${WORK:-runs/antidistill_fashion}
out=experiments/results/antidistill_fashion
mkdir -p "$out" "$work"
"$mmkt" --threads "$threads" info > "$out/machine.json"
echo "TEACHER=$teacher SEEDS=\"$seeds\" EPOCH_LIST=\"$epoch_list\" SMALL=$small LARGE=$large SMALL_EPOCHS=$small_epochs METHOD=$method THREADS=$threads bash experiments/antidistill_fashion.sh" > "$out/command.txt"
start=$(date +%s)
first=true
ran=false
distil() {  # distil DIR [options...]
  local dir=$1
  shift
  if [ ! -f "$dir/result.json" ]; then
    "$mmkt" --threads "$threads" --log-level warn distill --teacher "$teacher" --method "$method" \
      --teacher-metrics "$first" --out "$dir" "$@" > /dev/null
    ran=true
  fi
  first=false
}
for seed in $seeds; do
  distil "$work/s$seed/small" --student "$small" --epochs "$small_epochs" --seed "$seed"
  for e in $epoch_list; do
    distil "$work/s$seed/random_e$e" --student "$large" --epochs "$e" --seed "$seed"
    distil "$work/s$seed/grown_e$e" --student "$large" --epochs "$e" --seed "$seed" \
      --grow-from "$work/s$seed/small"
    distil "$work/s$seed/fromsmall_e$e" --student "$large" --epochs "$e" --seed "$seed" \
      --student-teacher "$work/s$seed/small"
  done
done
if $ran; then
  echo "all runs: $(( $(date +%s) - start )) s wall, $threads threads" > "$out/wall_time.txt"
fi
for d in "$work"/s*/*/; do
  mkdir -p "$out/$(basename "$(dirname "$d")")/$(basename "$d")"
  cp "$d/result.json" "$d/result.md" "$d/log.jsonl" "$out/$(basename "$(dirname "$d")")/$(basename "$d")/"
done
python3 - "$out" "$small" "$large" "$epoch_list" $seeds <<'PY'
import json, statistics, sys
out, small, large, epoch_list, seeds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(), sys.argv[5:]
def figures(path):
    r = json.load(open(path))
    s = r["student"]["retrieval"]
    return {"i->t mAP cos": s["image->text"]["cosine"]["mAP"], "i->i mAP cos": s["image->image"]["cosine"]["mAP"],
            "probe": r["student"]["probe"]["accuracy"], "seconds": r["training"]["seconds"],
            "params": r["student"]["parameters"]}
def agg(values):
    return (statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
rows, data = [], {}
data["small"] = [figures(f"{out}/s{s}/small/result.json") for s in seeds]
for start in ["random", "grown", "fromsmall"]:
    for e in epoch_list:
        data[f"{start}_e{e}"] = [figures(f"{out}/s{s}/{start}_e{e}/result.json") for s in seeds]
keys = ["i->t mAP cos", "i->i mAP cos", "probe", "seconds"]
names = {"small": f"small {small}, from the JMVAE teacher", "random": f"{large} random init",
         "grown": f"{large} grown from the small", "fromsmall": f"{large} distilled from the small"}
summary = {}
md = [f"Antidistillation on Fashion-MNIST, seeds {', '.join(seeds)}: mean +- std. Students learn with the same method; "
      "'seconds' is the student's training time (evaluation excluded).\n",
      "| student | epochs | params | " + " | ".join(keys) + " |", "| --- | ---: | ---: | " + " | ".join(["---:"] * len(keys)) + " |"]
for name, runs in data.items():
    start = name.split("_e")[0]
    epochs = name.split("_e")[1] if "_e" in name else ""
    cells = {k: agg([r[k] for r in runs]) for k in keys}
    summary[name] = {k: {"mean": v[0], "std": v[1], "values": [r[k] for r in runs]} for k, v in cells.items()}
    md.append(f"| {names[start]} | {epochs} | {runs[0]['params']} | " +
              " | ".join(f"{cells[k][0]:.3f} +- {cells[k][1]:.3f}" if k != "seconds" else f"{cells[k][0]:.1f}" for k in keys) + " |")
# Epochs to a fixed quality: the random-init large student's mean after the most epochs.
last = epoch_list[-1]
target = {k: summary[f"random_e{last}"][k]["mean"] for k in ["i->t mAP cos", "i->i mAP cos", "probe"]}
md.append(f"\nFirst listed epoch count whose mean reaches the random-init large student's mean after {last} epochs:\n")
md.append("| start | " + " | ".join(f"{k} >= {v:.3f}" for k, v in target.items()) + " |")
md.append("| --- | ---: | ---: | ---: |")
reach = {}
for start in ["random", "grown", "fromsmall"]:
    cells = []
    for k in target:
        hit = next((e for e in epoch_list if summary[f"{start}_e{e}"][k]["mean"] >= target[k] - 1e-12), None)
        reach.setdefault(start, {})[k] = hit
        cells.append(f"{hit} ({summary[f'{start}_e{hit}']['seconds']['mean']:.1f} s)" if hit else f"not within {last}")
    md.append(f"| {names[start]} | " + " | ".join(cells) + " |")
# The training loss per epoch of the longest runs (the learning curve; mean over seeds).
md.append(f"\nTraining loss ({json.load(open(f'{out}/s{seeds[0]}/small/result.json'))['options']['method']}, mean over the epoch's steps) per epoch of the {last}-epoch runs, mean over seeds:\n")
md.append("| start | " + " | ".join(f"epoch {i + 1}" for i in range(int(last))) + " |")
md.append("| --- | " + " | ".join(["---:"] * int(last)) + " |")
curves = {}
for start in ["random", "grown", "fromsmall"]:
    per_seed = []
    for sd in seeds:
        lines = [json.loads(l) for l in open(f"{out}/s{sd}/{start}_e{last}/log.jsonl") if l.strip()]
        per_seed.append([l["train"]["loss"] if "train" in l else l["loss"] for l in lines])
    curve = [statistics.mean(v) for v in zip(*per_seed)]
    curves[start] = curve
    md.append(f"| {names[start]} | " + " | ".join(f"{x:.2f}" for x in curve) + " |")
json.dump({"seeds": seeds, "rows": summary, "reach_random_final_quality": reach, "loss_curves": curves}, open(f"{out}/summary.json", "w"), indent=2)
open(f"{out}/summary.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
