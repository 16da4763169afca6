#!/usr/bin/env bash
# Proposed for the next GPU session (about 11 minutes on one H200): the speed and exactness checks,
# the trainer's throughput, then the shipped f16-lfq20 continued at full scale.
#   1. models/recipes/gpu_speed.sh on the shipped weights: 720p frames/s, and the CUDA frequency
#      tables that tests/test_golden.py checks against this machine's CPU (first, on a quiet GPU);
#   2. benchmarks/trainer_speed.py: tokenizer-trainer crops/s with the GPU's name, before (crops cut
#      on the host, commit 98bd679) and after (crops cut on the GPU), eager and under torch.compile,
#      interleaved (2 rounds of 15 s each, on one set of the pack); the training below compiles only
#      if that measured faster;
#   3. tokenizer: the whole network goes on training from the shipped weights (4 minutes), under
#      torchrun (python3 -m torch.distributed.run) over every GPU present: one process a GPU,
#      --batch crops each;
#   4. prior: fine-tuned from the shipped prior on the new tokens, on fresh crops at the quality
#      levels' scales (--crops 0 --scales), the recipe of the shipped prior's last stage (see
#      models/f16-lfq20/card.md), under torchrun too (2 minutes).
# usage: models/recipes/gpu_next.sh DATA FRAMES_DIR BEFORE OUT [SCALE]
# DATA: ../shared/tools/pack_train_data.py DATA --max-mib 24 --max-side 512 (the working tree, 30 MB,
# and everything carried must stay under 64 MiB); FRAMES_DIR: .video720 (see gpu_speed.sh); BEFORE:
# the trainer before issue 17, as `mkdir .before && git archive 98bd679 vqzip | tar -x -C .before`
# (0.3 MB; the device machine has no git history). SCALE multiplies the time budgets (tested on the
# busy 2-core CPU with SCALE=0.01: 30 minutes, each batch-32 step taking minutes). On the device machine:
#   pip install -q --no-index .whl/*.whl && bash models/recipes/gpu_next.sh .train_pack .video720 .before "$OUT"
set -u
DATA=$1; FRAMES=$2; BEFORE=$3; OUT=$4; S=${5:-1}; RUNS=${RUNS:-/tmp/vqzip_next}
BASE=models/f16-lfq20
m() { python3 -c "print(max(0.05, $1 * $S))"; }
mkdir -p "$RUNS" "$OUT/next"
export PYTHONUNBUFFERED=1
DEV=$(python3 -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
NPROC=$(python3 -c "import torch; print(max(1, torch.cuda.device_count()))")
bash models/recipes/gpu_speed.sh "$FRAMES" "$FRAMES" "$OUT" > "$RUNS/speed.log" 2>&1
SET=$(ls -d "$DATA"/*/ | head -1)
python3 benchmarks/trainer_speed.py "$SET" --out "$OUT/trainer" --device "$DEV" --before-src "$BEFORE" \
    --rounds 2 --minutes "$(m 0.25)" --batch 32 --crop 256 $([ "$DEV" = cuda ] && echo --compile) \
    > "$RUNS/trainer_speed.log" 2>&1 ||
  echo "trainer_speed failed"
COMPILE=$(python3 -c "
import json
s = json.load(open('$OUT/trainer/trainer_speed_$DEV.json'))['summary']
print('--compile' if (s['after_compiled']['median_crops_per_s'] or 0) > (s['after']['median_crops_per_s'] or 0) else '--no-compile')
" 2>/dev/null || echo --no-compile)
echo "trainer: $NPROC process(es) on $DEV, $COMPILE"
python3 -m torch.distributed.run --standalone --nproc_per_node "$NPROC" -m vqzip train tokenizer "$DATA" \
    --init $BASE/tokenizer.safetensors -o "$RUNS/next" --minutes "$(m 4)" --batch 32 --crop 256 --lr 2e-4 $COMPILE &&
  python3 -m torch.distributed.run --standalone --nproc_per_node "$NPROC" -m vqzip train prior "$DATA" \
    --tokenizer "$RUNS/next/tokenizer.safetensors" -o "$RUNS/next" --init $BASE/prior.safetensors \
    --minutes "$(m 2)" --crop 320 --crops 0 --batch 48 --lr 2e-4 --scales 3/4,1,5/4,3/2,7/4 --max-side 768 $COMPILE
echo "train exit $?"
cp "$RUNS/next"/tokenizer*.safetensors "$RUNS/next/prior.safetensors" "$OUT/next"/
tar czf "$OUT/logs.tgz" -C "$RUNS" --exclude='*.safetensors' .
ls -la "$OUT" "$OUT/next"
