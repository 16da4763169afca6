#!/usr/bin/env bash
# A VQZIP_MODELS folder that is the shipped models with another refinement layer: the base
# tokenizer and prior (and points.json) linked from models/, REFINE copied in as
# f16-lfq20/refine.safetensors, which encodes; the shipped layers are linked as refine_vN, so their
# files still decode. Files coded with REFINE name its hash, so they decode only where the same
# layer is installed. Prints the folder.
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
# the shipped layers stay installed under the names of earlier layers, so that their files (the
# golden files among them) still decode: a file names the layer that made it by its hash
n=0
for f in "$BASE"/f16-lfq20/refine_v*.safetensors; do
  [ -e "$f" ] || continue
  ln -sf "$f" "$DIR/f16-lfq20/"
  n=$((n + 1))
done
ln -sf "$BASE/f16-lfq20/refine.safetensors" "$DIR/f16-lfq20/refine_v$((n + 1)).safetensors"
echo "$DIR"
