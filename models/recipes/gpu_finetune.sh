#!/usr/bin/env bash
# Second GPU session: three continuations of the shipped f16-lfq20, trained side by side on one GPU
# (~7 minutes), then the GPU-only measurements.
#   full:   encoder, quantizer and decoder go on training; the prior is fine-tuned on the new tokens
#   gan10:  decoder only, with the PatchGAN term (weight 0.1); tokens and prior stay as shipped
#   gan03:  the same with weight 0.03
# usage: models/recipes/gpu_finetune.sh DATA OUT [SCALE] [FRAMES_DIR]
# DATA is a folder packed by ../shared/tools/pack_train_data.py DATA --max-mib 44 --max-side 512;
# FRAMES_DIR holds 720p frames for benchmarks/video_fps.py. SCALE multiplies every time budget (the
# recipe was tested on a CPU with SCALE=0.01).
set -u
DATA=$1; OUT=$2; S=${3:-1}; FRAMES=${4:-}; RUNS=${RUNS:-/tmp/vqzip_ft}
BASE=models/f16-lfq20
m() { python3 -c "print(max(0.05, $1 * $S))"; }
n() { python3 -c "print(max(64, int($1 * $S)))"; }
mkdir -p "$RUNS" "$OUT"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=4
tok() { python3 -m vqzip train tokenizer "$DATA" --init $BASE/tokenizer.safetensors --batch 32 --crop 256 "$@"; }
{ tok -o "$RUNS/full" --minutes "$(m 3.8)" --lr 2e-4 &&
  python3 -m vqzip train prior "$DATA" --tokenizer "$RUNS/full/tokenizer.safetensors" -o "$RUNS/full" \
    --init $BASE/prior.safetensors --minutes "$(m 1.7)" --crop 320 --crops "$(n 8000)" --batch 48 --lr 5e-4
  echo "full exit $?"; } > "$RUNS/full.log" 2>&1 &
{ tok -o "$RUNS/gan10" --minutes "$(m 5.5)" --lr 1e-4 --decoder-only --gan-weight 0.1 --gan-start 0.1
  echo "gan10 exit $?"; } > "$RUNS/gan10.log" 2>&1 &
{ tok -o "$RUNS/gan03" --minutes "$(m 5.5)" --lr 1e-4 --decoder-only --gan-weight 0.03 --gan-start 0.1
  echo "gan03 exit $?"; } > "$RUNS/gan03.log" 2>&1 &
while sleep 30; do  # progress for whoever watches
  for f in "$RUNS"/*.log; do echo "$(basename "$f"): $(tail -c 300 "$f" | tail -n 1)"; done
  jobs -r | grep -q . || break
done
wait
# What comes back is limited to 8 files: the decoder-only runs return their decoder alone.
mkdir -p "$OUT/full" "$OUT/gan10" "$OUT/gan03"
cp "$RUNS/full"/tokenizer*.safetensors "$RUNS/full/prior.safetensors" "$OUT/full"/
for name in gan10 gan03; do
  python3 -c "import sys; from safetensors.torch import save_file; from vqzip.weights import load_weights
sd, md = load_weights(sys.argv[1]); save_file({k: v for k, v in sd.items() if k.startswith('decoder.')}, sys.argv[2], {'meta': repr(md)})" \
    "$RUNS/$name/tokenizer.safetensors" "$OUT/$name/decoder.safetensors"
done
if [ -n "$FRAMES" ]; then
  python3 benchmarks/video_fps.py "$FRAMES" "$OUT/video_fps.json" || echo "video_fps failed"
fi
[ -f "$OUT/full/prior.safetensors" ] &&
  python3 benchmarks/gpu_checks.py "$OUT/full" "$DATA" "$OUT/gpu_checks.json" || echo "gpu_checks failed"
tar czf "$OUT/logs.tgz" -C "$RUNS" --exclude='*.safetensors' .
ls -la "$OUT" "$OUT"/*
