#!/usr/bin/env bash
# The whole distillation comparison on Fashion-MNIST + captions: the teacher's image encoder,
# a baseline student (labels only), every method alone and its heavy-auxiliary (-H) variant,
# the combined method and data-free distillation, all with the same student network, in one
# Markdown table (the layout of the PKT paper's Table 1 plus cross-modal columns).
#
# Usage: [TEACHER=runs/fm6] [STUDENT=mlp:32] [AUX=mlp:256] [EPOCHS=20] [THREADS=2] \
#        [OUT=runs/distill_fashion] [COMBINED=ce=1,bayes=0.1] [HEAVY=1] bash experiments/distill_fashion.sh
# HEAVY=0 keeps the single-method rows only (no -H, data-free or text-student rows: ~15 min).
# Without TEACHER, a teacher is trained first (JMVAE-kl + triplets, 6 epochs, ~30 min on 2
# cores). Each student run takes 1-2 minutes; the whole table ~30 minutes on 2 cores.
# Writes OUT/<row>/{result.json,result.md,student.pt,...} and OUT/table.md (also printed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mmkt="build/release/bin/mmkt --threads ${THREADS:-2}"
teacher=${TEACHER:-runs/fm6}
student=${STUDENT:-mlp:32}
aux=${AUX:-mlp:256}
epochs=${EPOCHS:-20}
out=${OUT:-runs/distill_fashion}
combined=${COMBINED:-ce=1,bayes=0.1}
if [ ! -f "$teacher/config.json" ]; then
  $mmkt train --config experiments/fashion_captions.json --set train.epochs=6 \
    --set train.warmup_epochs=2 --run "$teacher"
fi
mkdir -p "$out"
rows=()
distil() {  # distil ROW STUDENT EPOCHS [options...]
  local row=${1//[=,+]/_} net=$2 n=$3
  shift 3
  local metrics=false
  [ ${#rows[@]} -eq 0 ] && metrics=true  # the teacher's quality columns once, from the first row
  echo "== $row" >&2
  $mmkt --log-level warn distill --teacher "$teacher" --student "$net" --auxiliary "$aux" \
    --epochs "$n" --teacher-metrics "$metrics" --out "$out/$row" "$@" > /dev/null
  rows+=("$out/$row")
}
distil baseline "$student" "$epochs" --method baseline
for m in kd gd hint pkt vid bayes mse "$combined"; do
  distil "$m" "$student" "$epochs" --method "$m"
done
if [ "${HEAVY:-1}" = 1 ]; then
  for m in kd gd hint pkt vid bayes mse "$combined"; do
    distil "$m-H" "$student" "$epochs" --method "$m" --heavy
  done
  distil "bayes-datafree" "$student" "$epochs" --method bayes --data-free
  # A text-only student (captions -> the teacher's latent space), compared with the teacher's
  # text encoder; its t->i column is student text -> teacher images.
  distil "text-bayes" "${TEXT_STUDENT:-gru:32:64:64}" "${TEXT_EPOCHS:-3}" --method bayes --modality text
fi
$mmkt --log-level warn distill-table "${rows[@]}" --out "$out/table.md"
