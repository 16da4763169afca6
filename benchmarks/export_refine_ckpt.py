"""Export the EMA of a refinement run's checkpoint as shipped weights, while the run goes on or
after it was stopped early (how inter_v1 was made: the run's budget outlasted the time there was).

usage: python benchmarks/export_refine_ckpt.py RUN/refine_ckpt.safetensors OUT.safetensors"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vqzip.nn.refine import RefineConfig, Refiner
from vqzip.train.checkpoint import load_checkpoint, read_meta
from vqzip.weights import export_weights
ckpt, out = Path(sys.argv[1]), Path(sys.argv[2])
meta = read_meta(ckpt)
cfg = RefineConfig.from_saved(meta["config"])
model, ema = Refiner(cfg), Refiner(cfg)
load_checkpoint(ckpt, {"model": model, "ema": ema}, {})
export_weights(out, ema, {"config": cfg.to_dict(), "recipe": meta["recipe"], "steps": meta["step"],
                          "train_seconds": round(meta["elapsed"]), "device": "cpu"})
print("step", meta["step"], "->", out)
