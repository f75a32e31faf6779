#!/usr/bin/env bash
# What triplet constraints buy: the same JMVAE-kl run with and without the soft triplet term,
# then retrieval on the test set of each.
# Usage: [CONFIG=experiments/shapes_l3.json] [NAME=shapes] bash experiments/triplet_ablation.sh \
#          [extra --set overrides...]
# Defaults: CONFIG=experiments/fashion_captions_short.json, NAME=fashion.
# Writes runs/triplet_<NAME>_{on,off}/eval/retrieval.{json,md} and prints both tables.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mmkt=build/release/bin/mmkt
config=${CONFIG:-experiments/fashion_captions_short.json}
name=${NAME:-fashion}
for arm in on off; do
  weight=1.0
  [ "$arm" = off ] && weight=0.0
  $mmkt train --config "$config" --run "runs/triplet_${name}_$arm" --overwrite \
    --set "triplet.weight=$weight" "$@" > /dev/null
  $mmkt eval --run "runs/triplet_${name}_$arm" > /dev/null
done
for arm in on off; do
  echo "## $name, triplet $arm"
  cat "runs/triplet_${name}_$arm/eval/retrieval.md"
done
