#!/usr/bin/env bash
# A VQZIP_MODELS folder that is the shipped models with another refinement layer: the base
# tokenizer and prior (and points.json) linked from models/, REFINE copied in as
# f16-lfq20/refine.safetensors. Files coded with it name that layer's hash, so they decode only
# where the same layer is installed. Prints the folder.
# usage: models/recipes/models_with_refine.sh REFINE.safetensors DIR
#   VQZIP_MODELS=$(bash models/recipes/models_with_refine.sh OUT/refine.safetensors runs/models) vqzip encode photo.png
set -eu
REFINE=$1; DIR=$2; BASE=$(cd "$(dirname "$0")/../.." && pwd)/models
mkdir -p "$DIR/f16-lfq20"
ln -sf "$BASE/points.json" "$DIR/points.json"
for f in "$BASE"/f16-lfq20/tokenizer*.safetensors "$BASE/f16-lfq20/prior.safetensors"; do
  ln -sf "$f" "$DIR/f16-lfq20/"
done
cp "$REFINE" "$DIR/f16-lfq20/refine.safetensors"  # no metrics.json or card.md: they describe the shipped layer
echo "$DIR"
