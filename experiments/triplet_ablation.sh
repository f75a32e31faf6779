#!/usr/bin/env bash
# What triplet constraints buy: the same JMVAE-kl run on Fashion-MNIST with captions, with and
# without the soft triplet term, then retrieval on the test set of each.
# Usage: bash experiments/triplet_ablation.sh [extra --set overrides...]
# Writes runs/triplet_{on,off}/eval/retrieval.{json,md} and prints both tables.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mmkt=build/release/bin/mmkt
for arm in on off; do
  weight=1.0
  [ "$arm" = off ] && weight=0.0
  $mmkt train --config experiments/fashion_captions_short.json --run "runs/triplet_$arm" --overwrite \
    --set "triplet.weight=$weight" "$@" > /dev/null
  $mmkt eval --run "runs/triplet_$arm" > /dev/null
done
for arm in on off; do
  echo "## triplet $arm"
  cat "runs/triplet_$arm/eval/retrieval.md"
done
