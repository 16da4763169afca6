#!/usr/bin/env bash
# A GPU session's speed and exactness checks, a few minutes in all:
#   1. benchmarks/video_fps.py: 720p frames/s, each stage timed alone, and the key frame's prior on
#      CUDA against the CPU (time, and whether the bytes are equal);
#   2. benchmarks/gpu_checks.py: the exact prior's frequency-table hashes on CUDA and on the CPU
#      (for the shipped prior), and the tokenizer's 720p frames/s in the codec's precision and fp32.
# usage: models/recipes/gpu_speed.sh FRAMES_DIR DATA OUT
# FRAMES_DIR: 720p frames as images (the first 32 of bigbuckbunny.mp4 as JPEG); DATA: an image folder
# that gpu_checks takes a few crops from (e.g. the packed training set). The device machine lacks
# constriction: install it first from a carried wheel (pip install --no-index .whl/*.whl).
# Tested on the CPU with a 2-frame folder (MAX_FRAMES=2). On the device machine (carry .video720 and
# .whl, 5 MB; the frames serve as DATA too, since gpu_checks only needs a few crops):
#   pip install -q --no-index .whl/*.whl && bash models/recipes/gpu_speed.sh .video720 .video720 "$OUT"
set -u
FRAMES=$1; DATA=$2; OUT=$3
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${THREADS:-8}
python3 benchmarks/video_fps.py "$FRAMES" "$OUT/video_fps.json" ${MAX_FRAMES:+--max-frames $MAX_FRAMES} ||
  echo "video_fps failed"
python3 benchmarks/gpu_checks.py models/f16-lfq20 "$DATA" "$OUT/gpu_checks.json" || echo "gpu_checks failed"
ls -la "$OUT"
