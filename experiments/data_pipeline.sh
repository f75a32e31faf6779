#!/usr/bin/env bash
# Data pipeline rate against the training step's consumption, side by side in one run:
#   mmkt data bench (batches/s of batch 100, captions tokenized, background worker)
#   a short training run of the matching configuration (train_samples_per_second)
# Usage: bash experiments/data_pipeline.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mmkt=build/release/bin/mmkt
rate() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
fm_pipe=$($mmkt --log-level warn data bench --dataset fashion-mnist --batches 300 | rate samples_per_second)
sh_pipe=$($mmkt --log-level warn data bench --dataset shapes --batches 200 | rate samples_per_second)
fm_train=$($mmkt --log-level warn train --config experiments/fashion_captions_short.json --run runs/bench_fm \
  --overwrite --set train.epochs=1 train.max_steps_per_epoch=60 data.validation=0 | rate train_samples_per_second)
sh_train=$($mmkt --log-level warn train --config experiments/shapes_l3.json --run runs/bench_shapes \
  --overwrite --set train.epochs=1 train.max_steps_per_epoch=20 data.shapes_train=5000 data.shapes_test=500 \
  data.validation=0 | rate train_samples_per_second)
python3 - "$fm_pipe" "$fm_train" "$sh_pipe" "$sh_train" <<'PY'
import sys
fp, ft, sp, st = map(float, sys.argv[1:])
print("| dataset | pipeline samples/s | training samples/s | ratio |")
print("| --- | ---: | ---: | ---: |")
print(f"| Fashion-MNIST + captions | {fp:.0f} | {ft:.0f} | {fp/ft:.0f}x |")
print(f"| shapes level 3, 64x64 RGB + captions | {sp:.0f} | {st:.0f} | {sp/st:.0f}x |")
PY
