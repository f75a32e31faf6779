#!/usr/bin/env bash
# Shapes levels 1-5 (mmkt's generated CdSprites+ look-alike) x model types x seeds, judged the
# way the multimodal-vae-comparison toolkit judges CdSprites+: cross-generation text->image and
# image->text, and joint generation, each as "strict" (every feature right) and "feats"
# (features right per item), plus the held-out compositional combinations on their own.
#   1. trains runs/shapes_l<L>_<MODEL>_s<SEED> with experiments/shapes_levels.json and
#      --set data.shapes_level=L model.type=MODEL seed=SEED (skipped when its summary.json
#      exists; resumed with --resume when only its checkpoint does);
#   2. `mmkt eval --metrics coherence` on all 5000 test items. One image evaluator per level
#      (3 epochs over 30000 fresh real images of every combination; its test accuracy is in each
#      report) judges every model and seed of that level: trained by the level's first run, then
#      copied with its recipe file, as the toolkit uses one pretrained classifier per level
#      (until this script copied the recipe file too, every evaluation trained its own);
#   3. copies the evidence to experiments/results/shapes/l<L>_<MODEL>_s<SEED>/ and writes
#      experiments/results/shapes/table.{json,md}: mean +- std over the seeds present.
# Usage: [LEVELS="1 2 3 4 5"] [MODELS="jmvae mvae mmvae"] [SEEDS="0 1 2"] [THREADS=2]
#        [CONFIG=experiments/shapes_levels.json] [NAME=shapes] [EXTRA="--set train.epochs=6"]
#        bash experiments/shapes_levels.sh
# NAME names the runs (runs/<NAME>_l<L>_<MODEL>_s<SEED>) and the results folder
# (experiments/results/<NAME>/), so that another recipe (CONFIG) keeps its own table.
# TABLE_ONLY=1 rebuilds the table from the committed results without training.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mmkt=${MMKT:-build/release/bin/mmkt}
threads=${THREADS:-2}
levels=${LEVELS:-1 2 3 4 5}
models=${MODELS:-jmvae mvae mmvae}
seeds=${SEEDS:-0 1 2}
extra=${EXTRA:-}
config=${CONFIG:-experiments/shapes_levels.json}
name=${NAME:-shapes}
out=experiments/results/$name
mkdir -p "$out" runs/shapes_evaluators
if [ -z "${TABLE_ONLY:-}" ]; then
  "$mmkt" --threads "$threads" info > "$out/machine.json"
  for seed in $seeds; do
    for level in $levels; do
      for model in $models; do
        cell=l${level}_${model}_s${seed}
        run=runs/${name}_$cell
        dest=$out/$cell
        mkdir -p "$dest"
        # shellcheck disable=SC2206
        train_cmd=("$mmkt" --threads "$threads" train --config "$config" --run "$run"
                   --set "seed=$seed" --set "data.shapes_level=$level" --set "model.type=$model" $extra)
        if [ ! -f "$run/summary.json" ]; then
          start=$(date +%s)
          if [ -f "$run/checkpoint.pt" ]; then
            echo "$mmkt --threads $threads train --run $run --resume" >> "$dest/command.txt"
            "$mmkt" --threads "$threads" train --run "$run" --resume 2>&1 | tee -a "$dest/train.log"
          else
            echo "${train_cmd[*]}" > "$dest/command.txt"
            "${train_cmd[@]}" 2>&1 | tee "$dest/train.log"
          fi
          echo "training: $(( $(date +%s) - start )) s wall, $threads threads" >> "$dest/wall_time.txt"
        fi
        if [ ! -f "$run/eval/report.json" ]; then
          evaluator=runs/shapes_evaluators/level$level.pt
          mkdir -p "$run/eval"
          # The checkpoint and its recipe file: the evaluation reuses a checkpoint only beside
          # a recipe equal to its own (lib/eval/coherence.cpp).
          if [ -f "$evaluator" ] && [ -f "$evaluator.json" ]; then
            cp "$evaluator" "$run/eval/evaluator_image.pt"
            cp "$evaluator.json" "$run/eval/evaluator_image.pt.json"
          fi
          eval_cmd=("$mmkt" --threads "$threads" eval --run "$run" --metrics coherence --coherence-items 5000
                    --evaluator-epochs 3 --evaluator-items 30000)
          echo "${eval_cmd[*]}" >> "$dest/command.txt"
          start=$(date +%s)
          "${eval_cmd[@]}" > "$dest/eval.log" 2>&1
          echo "evaluation: $(( $(date +%s) - start )) s wall, $threads threads" >> "$dest/wall_time.txt"
          if [ ! -f "$evaluator.json" ]; then
            cp "$run/eval/evaluator_image.pt" "$evaluator"
            cp "$run/eval/evaluator_image.pt.json" "$evaluator.json"
          fi
        fi
        cp "$run/config.json" "$run/log.jsonl" "$run/summary.json" "$dest/"
        mkdir -p "$dest/eval"
        cp "$run/eval/report."{json,md} "$dest/eval/"
      done
    done
  done
fi
python3 - "$out" "$config" <<'PY'
import glob, json, os, re, statistics, sys
out, config = sys.argv[1], sys.argv[2]
# Published best model per cell (strict), multimodal-vae-comparison toolkit, CdSprites+ 1-5.
published = {1: (0.52, 0.64, 0.17), 2: (0.18, 0.55, 0.03), 3: (0.08, 0.59, 0.00),
             4: (0.03, 0.01, 0.00), 5: (0.00, 0.00, 0.00)}
cells = [("text->image", "image|text"), ("image->text", "text|image"), ("joint", "joint(image,text)")]
runs = {}
for path in sorted(glob.glob(f"{out}/l*_*_s*/eval/report.json")):
    m = re.match(r"l(\d)_(\w+)_s(\d+)", os.path.basename(os.path.dirname(os.path.dirname(path))))
    level, model, seed = int(m.group(1)), m.group(2), int(m.group(3))
    runs.setdefault((level, model), []).append(json.load(open(path))["coherence"])
def stat(values):
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}
table = []
for (level, model), reports in sorted(runs.items()):
    row = {"level": level, "model": model, "seeds": len(reports)}
    for label, key in cells:
        for held in ["", " (held-out classes)"]:
            if all(key + held in r for r in reports):
                for fig in ["strict", "feats"]:
                    row[f"{label}{held} {fig}"] = stat([r[key + held][fig] for r in reports])
        row["groups"] = reports[0][cells[0][1]]["groups"]
    table.append(row)
json.dump({"published_best_strict": published, "rows": table}, open(f"{out}/table.json", "w"), indent=2)
def cell(row, name):
    v = row.get(name)
    if v is None:
        return "-"
    return f"{v['mean']:.3f}" if len(v["values"]) == 1 else f"{v['mean']:.3f} +- {v['std']:.3f}"
with open(f"{out}/table.md", "w") as md:
    md.write(f"Shapes levels (mmkt's generated CdSprites+ look-alike, not the official files), recipe {config}: "
             "cross- and joint generation coherence on the 5000 test items; mean +- std over seeds. "
             "strict = every feature right; feats = features right per item (of the level's count). "
             "One seed: the value alone; more: mean +- std.\n\n")
    md.write("| level | model | seeds | text->image strict | text->image feats | image->text strict | image->text feats | joint strict | joint feats |\n")
    md.write("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
    for level in sorted({r["level"] for r in table}):
        p = published[level]
        md.write(f"| {level} | published best (CdSprites+) | | {p[0]:.2f} | | {p[1]:.2f} | | {p[2]:.2f} | |\n")
        for row in [r for r in table if r["level"] == level]:
            md.write(f"| {level} | mmkt {row['model']} | {row['seeds']} | "
                     + " | ".join(cell(row, f"{label} {fig}") for label, _ in cells for fig in ["strict", "feats"])
                     + " |\n")
    md.write("\nHeld-out compositional combinations (never in training; level 2: big triangles, "
             "levels 3-5: red hearts and blue stars):\n\n")
    md.write("| level | model | text->image strict | text->image feats | image->text strict | image->text feats |\n")
    md.write("| --- | --- | ---: | ---: | ---: | ---: |\n")
    for row in table:
        if f"text->image (held-out classes) strict" in row:
            md.write(f"| {row['level']} | mmkt {row['model']} | "
                     + " | ".join(cell(row, f"{label} (held-out classes) {fig}") for label, _ in cells[:2] for fig in ["strict", "feats"])
                     + " |\n")
print(open(f"{out}/table.md").read())
PY
