#!/usr/bin/env bash
# Proposed for the next GPU session (about 9 minutes): the speed and exactness checks, then the
# shipped f16-lfq20 continued at full scale.
#   1. models/recipes/gpu_speed.sh on the shipped weights: 720p frames/s, and the CUDA frequency
#      tables that tests/test_golden.py checks against this machine's CPU (first, on a quiet GPU);
#   2. tokenizer: the whole network goes on training from the shipped weights (4.5 minutes);
#   3. prior: fine-tuned from the shipped prior on the new tokens, on fresh crops at the quality
#      levels' scales (--crops 0 --scales), the recipe of the shipped prior's last stage (see
#      models/f16-lfq20/card.md).
# usage: models/recipes/gpu_next.sh DATA FRAMES_DIR OUT [SCALE]
# DATA: ../shared/tools/pack_train_data.py DATA --max-mib 24 --max-side 512 (the working tree, 30 MB,
# and everything carried must stay under 64 MiB); FRAMES_DIR: .video720 (see gpu_speed.sh); SCALE
# multiplies the time budgets (tested on the CPU with SCALE=0.01). On the device machine:
#   pip install -q --no-index .whl/*.whl && bash models/recipes/gpu_next.sh .train_pack .video720 "$OUT"
set -u
DATA=$1; FRAMES=$2; OUT=$3; S=${4:-1}; RUNS=${RUNS:-/tmp/vqzip_next}
BASE=models/f16-lfq20
m() { python3 -c "print(max(0.05, $1 * $S))"; }
mkdir -p "$RUNS" "$OUT/next"
export PYTHONUNBUFFERED=1
bash models/recipes/gpu_speed.sh "$FRAMES" "$FRAMES" "$OUT" > "$RUNS/speed.log" 2>&1
python3 -m vqzip train tokenizer "$DATA" --init $BASE/tokenizer.safetensors -o "$RUNS/next" \
    --minutes "$(m 4.5)" --batch 32 --crop 256 --lr 2e-4 &&
  python3 -m vqzip train prior "$DATA" --tokenizer "$RUNS/next/tokenizer.safetensors" -o "$RUNS/next" \
    --init $BASE/prior.safetensors --minutes "$(m 2.5)" --crop 320 --crops 0 --batch 48 --lr 2e-4 \
    --scales 3/4,1,5/4,3/2,7/4 --max-side 768
echo "train exit $?"
cp "$RUNS/next"/tokenizer*.safetensors "$RUNS/next/prior.safetensors" "$OUT/next"/
tar czf "$OUT/logs.tgz" -C "$RUNS" --exclude='*.safetensors' .
ls -la "$OUT" "$OUT/next"
