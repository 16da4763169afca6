#!/usr/bin/env bash
# The full-scale training run behind the shipped models: two tokenizers and their priors, trained
# concurrently on one GPU (an H100/H200 lent for ~9 minutes), then benchmarks/gpu_checks.py.
#   usage: models/recipes/gpu_run.sh DATA OUT [SCALE]
# DATA is a folder packed by ../shared/tools/pack_train_data.py DATA --max-mib 44 --max-side 512.
# SCALE multiplies every time budget (the recipe was tested on a CPU with SCALE=0.01).
set -u
DATA=$1; OUT=$2; S=${3:-1}; RUNS=${RUNS:-/tmp/vqzip_runs}
m() { python3 -c "print(max(0.05, $1 * $S))"; }
n() { python3 -c "print(max(64, int($1 * $S)))"; }
mkdir -p "$RUNS" "$OUT"
export PYTHONUNBUFFERED=1
model() {  # name, tokenizer args, prior args
  local name=$1 targs=$2 pargs=$3
  python3 -m vqzip train tokenizer "$DATA" -o "$RUNS/$name" $targs > "$RUNS/$name.log" 2>&1 &&
  python3 -m vqzip train prior "$DATA" --tokenizer "$RUNS/$name/tokenizer.safetensors" -o "$RUNS/$name" $pargs >> "$RUNS/$name.log" 2>&1
  echo "$name exit $?" >> "$RUNS/$name.log"
}
model f16 "--minutes $(m 5.2) --downsample 16 --bits 20 --group-bits 10 --batch 32 --crop 256 --lr 5e-4" \
          "--minutes $(m 1.7) --crop 320 --crops $(n 8000) --batch 48 --lr 1e-3" &
model f8  "--minutes $(m 5.2) --downsample 8 --bits 16 --group-bits 8 --batch 32 --crop 256 --lr 5e-4" \
          "--minutes $(m 1.7) --crop 256 --crops $(n 8000) --batch 24 --lr 1e-3" &
while sleep 30; do  # progress for whoever watches
  for f in "$RUNS"/*.log; do echo "$(basename $f): $(tail -c 300 $f | tail -n 1)"; done
  jobs -r | grep -q . || break
done
wait
for name in f16 f8; do
  mkdir -p "$OUT/$name"
  cp "$RUNS/$name"/tokenizer*.safetensors "$RUNS/$name"/prior.safetensors "$OUT/$name"/ 2>/dev/null
done
tar czf "$OUT/logs.tgz" -C "$RUNS" --exclude='*ckpt*' --exclude='*.safetensors' .
python3 benchmarks/gpu_checks.py "$OUT/f16" "$DATA" "$OUT/gpu_checks.json" || echo "gpu_checks failed"
ls -la "$OUT" "$OUT"/*
