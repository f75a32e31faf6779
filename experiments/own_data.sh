#!/usr/bin/env bash
# Your own data, the README's way: a folder of user-style photos (mixed PNG/JPEG/BMP, 28-120 px,
# grey, tinted and product shots, free-form captions, class names) trained with the README's
# own-data command, over 3 seeds, with evidence:
#   1. `mmkt data photos` writes the folder (3000 items from the Fashion-MNIST training split);
#   2. `mmkt train --config experiments/own_data.json --set data.manifest=...` per seed (its
#      automatic choices are in train.log and config.json), timed;
#   3. `mmkt eval --metrics retrieval` on the held-out 10% the run carves for testing;
#   4. experiments/results/own_data/summary.{json,md}: text->image mAP (cosine) mean +- std, the
#      smallest KL of any epoch (collapse check) and the training wall time.
# Usage: [SEEDS="0 1 2"] [THREADS=2] [N=3000] bash experiments/own_data.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mmkt=${MMKT:-build/release/bin/mmkt}
threads=${THREADS:-2}
seeds=${SEEDS:-0 1 2}
n=${N:-3000}
out=experiments/results/own_data
folder=runs/own_data_photos
mkdir -p "$out"
"$mmkt" --threads "$threads" info > "$out/machine.json"
if [ ! -f "$folder/manifest.jsonl" ]; then
  echo "$mmkt data photos --out $folder --n $n" > "$out/folder_command.txt"
  "$mmkt" data photos --out "$folder" --n "$n"
fi
for seed in $seeds; do
  run=runs/own_data_s$seed
  dest=$out/seed$seed
  mkdir -p "$dest"
  train_cmd=("$mmkt" --threads "$threads" train --config experiments/own_data.json
             --set "data.manifest=$folder/manifest.jsonl" --set "seed=$seed" --run "$run")
  if [ ! -f "$run/summary.json" ]; then
    echo "${train_cmd[*]}" > "$dest/command.txt"
    start=$(date +%s)
    "${train_cmd[@]}" 2>&1 | tee "$dest/train.log"
    echo "$(( $(date +%s) - start ))" > "$dest/wall_seconds.txt"
  fi
  if [ ! -f "$run/eval/report.json" ]; then
    "$mmkt" --threads "$threads" eval --run "$run" --metrics retrieval > "$dest/eval.log" 2>&1
  fi
  cp "$run/config.json" "$run/log.jsonl" "$run/summary.json" "$dest/"
  mkdir -p "$dest/eval"
  cp "$run/eval/report."{json,md} "$dest/eval/"
done
python3 - "$out" $seeds <<'PY'
import json, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]
rows = []
for s in seeds:
    d = f"{out}/seed{s}"
    r = json.load(open(f"{d}/eval/report.json"))["retrieval"]
    log = [json.loads(l) for l in open(f"{d}/log.jsonl")]
    rows.append({"seed": s,
                 "text->image mAP cosine": r["text->image"]["cosine"]["mAP"],
                 "random mAP": r["text->image"]["cosine"]["random_mAP"],
                 "image->text mAP cosine": r["image->text"]["cosine"]["mAP"],
                 "image->image mAP cosine": r["image->image"]["cosine"]["mAP"],
                 "smallest epoch KL (nats)": min(e["train"]["kl"] for e in log),
                 "collapse warnings": sum(1 for e in log if "warning" in e),
                 "training wall seconds": float(open(f"{d}/wall_seconds.txt").read())})
agg = {k: {"mean": statistics.mean(r[k] for r in rows),
           "std": statistics.stdev([r[k] for r in rows]) if len(rows) > 1 else 0.0,
           "values": [r[k] for r in rows]} for k in rows[0] if k != "seed"}
json.dump({"seeds": seeds, "figures": agg}, open(f"{out}/summary.json", "w"), indent=2)
with open(f"{out}/summary.md", "w") as md:
    md.write("Own data: a 3000-photo folder from `mmkt data photos`, experiments/own_data.json, "
             f"seeds {', '.join(seeds)}; retrieval on the held-out 10%\n\n")
    md.write("| figure | mean | std | per seed |\n| --- | ---: | ---: | --- |\n")
    for k, v in agg.items():
        md.write(f"| {k} | {v['mean']:.3f} | {v['std']:.3f} | {', '.join(f'{x:.3f}' for x in v['values'])} |\n")
print(open(f"{out}/summary.md").read())
PY
