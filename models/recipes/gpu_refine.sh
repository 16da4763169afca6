#!/usr/bin/env bash
# One GPU lease of about 10 minutes (one H200): the checks first, on a quiet GPU, then the
# refinement layer trained at full scale for most of the lease, then the new layer checked.
#   1. checks (1-2 minutes expected; each is cut at 150 s), gathered in OUT/checks.json:
#      - benchmarks/cross_device.py: images encoded on CUDA and decoded on the host and the other
#        way round (tokens, symbols and base bytes equal on both; pixels within a few levels), and
#        the golden bytes and tokens of tests/golden on each device;
#      - benchmarks/gpu_checks.py: the exact prior's table hashes on CUDA and on the host, with the
#        grids, so that any machine can recompute them (benchmarks/verify_gpu_hashes.py
#        models/f16-lfq20/prior.safetensors OUT/checks.json); tokenizer 720p frames/s;
#      - benchmarks/video_fps.py: 720p frames a second, encode and decode, the stages alone, and
#        the key frame's exact prior on CUDA against the host (time, and equal bytes);
#   2. vqzip train refine: the shipped layer (its transform and its learned entropy model) trained on,
#      jointly, on a new schedule (--init), with the command of ../shared/gpu/refine-h200-4min for 6
#      minutes (5,374 steps in 4 minutes there; exported on the device now that it can);
#   3. the new layer through VQZIP_MODELS (models_with_refine.sh): cross_device.py again at q3.
# Without CUDA the CUDA parts are skipped (the checks say so) and the training runs on the CPU.
# usage: models/recipes/gpu_refine.sh OUT [SCALE]
# SCALE multiplies the training minutes and the number of 720p frames (SCALE=0.01 is the CPU
# test: 5.1-5.4 minutes on the busy 2-core CPU, one training step, video_fps half of it).
# DATA: the training pack (default .train_pack, from ../shared/tools/pack_train_data.py
# .train_pack --max-mib 17 --max-side 512); FRAMES: 720p frames as images (default .video720, see
# benchmarks/results/speed/README.md); both are git-ignored and carried. RUNS: scratch (/tmp).
# OUT gets five files, each under 16 MiB: refine.safetensors, refine_ckpt.safetensors (saved every
# 2 minutes, so a lease cut short still returns one), refine_log.jsonl, checks.json, run.log.
# On the device machine (README, "A GPU lease"):
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PYTHONPATH
#   bash models/recipes/gpu_refine.sh "$OUT"
# Back here: VQZIP_MODELS=$(bash models/recipes/models_with_refine.sh OUT/refine.safetensors runs/models) vqzip encode ...
set -u
OUT=$1; S=${2:-1}; DATA=${DATA:-.train_pack}; FRAMES=${FRAMES:-.video720}; RUNS=${RUNS:-/tmp/vqzip_refine}
PY=${PYTHON:-python3}
mkdir -p "$OUT" "$RUNS"
exec > >(tee -a "$OUT/run.log") 2>&1
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-8}
DEV=$($PY -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
# seconds a check may take on the GPU; a CPU is given ten times as long
LIMIT=$([ "$DEV" = cuda ] && echo 150 || echo 1500)
t0=$(date +%s)
step() { echo "== $(( $(date +%s) - t0 )) s: $*"; }
verdict() { $PY -c "import json, sys; r = json.load(open(sys.argv[1])); print(sys.argv[1], 'ok' if r['ok'] else 'FAILED', '-', r['how']['cuda'])" "$1" 2>/dev/null; }
gather() {  # the checks so far, as one JSON (written after the checks and again at the end)
  $PY - "$RUNS" "$OUT/checks.json" <<'PYEOF'
import json, sys
from pathlib import Path
runs, res = Path(sys.argv[1]), {}
for name in ("cross_device", "gpu_checks", "video_fps", "new_layer"):
    f = runs / f"{name}.json"
    res[name] = json.loads(f.read_text()) if f.exists() else "not run or failed (see run.log)"
Path(sys.argv[2]).write_text(json.dumps(res, indent=1) + "\n")
PYEOF
}
step "checks on $DEV, scale $S"
timeout $LIMIT $PY benchmarks/cross_device.py "$DATA" "$RUNS/cross_device.json" --quality 1,3 > "$RUNS/cross_device.log" ||
  echo "cross_device failed or found a difference (exit $?)"
verdict "$RUNS/cross_device.json"
FPS_FRAMES=$($PY -c "print(max(2, int(32 * $S)))")
timeout $LIMIT $PY benchmarks/gpu_checks.py models/f16-lfq20 "$DATA" "$RUNS/gpu_checks.json" "$($PY -c "print(max(1, int(8 * $S)))")" ||
  echo "gpu_checks failed (exit $?)"
[ -d "$FRAMES" ] && { timeout $LIMIT $PY benchmarks/video_fps.py "$FRAMES" "$RUNS/video_fps.json" --max-frames "$FPS_FRAMES" \
  > "$RUNS/video_fps.log" || echo "video_fps failed (exit $?)"; } || echo "no $FRAMES: video_fps skipped"
gather
step "training the refinement layer for $($PY -c "print(6 * $S)") minutes"
$PY -m vqzip train refine "$DATA" --tokenizer models/f16-lfq20/tokenizer.safetensors \
  --prior models/f16-lfq20/prior.safetensors -o "$OUT" --minutes "$($PY -c "print(6 * $S)")" --device "$DEV" \
  --batch 32 --crop 256 --fresh 16 --scales 1/2,3/4,1,5/4 --init models/f16-lfq20/refine.safetensors --lr 2e-4 \
  > "$RUNS/train.log" 2>&1
echo "train exit $?"; tail -n 2 "$RUNS/train.log"
if [ -f "$OUT/refine.safetensors" ]; then
  step "the new layer through VQZIP_MODELS"
  MODELS=$(bash models/recipes/models_with_refine.sh "$OUT/refine.safetensors" "$RUNS/models")
  VQZIP_MODELS=$MODELS timeout $LIMIT $PY benchmarks/cross_device.py "$DATA" "$RUNS/new_layer.json" --quality 3 \
    > "$RUNS/new_layer.log" || echo "new layer: cross_device failed or found a difference (exit $?)"
  verdict "$RUNS/new_layer.json"
fi
gather
step "done"
ls -la "$OUT"
