# refine_eval with every refinement layer's msssim_weight set to $W (the search's objective)
import os, runpy, sys
from pathlib import Path
from vqzip.nn import refine
W = float(os.environ["W"])
orig = refine.RefineConfig.__post_init__
def post(self):
    orig(self); self.msssim_weight = W
refine.RefineConfig.__post_init__ = post
BENCHMARKS = Path(__file__).resolve().parents[2]  # benchmarks/, where this file lies two folders down
sys.path.insert(0, str(BENCHMARKS))
sys.argv = ["refine_eval.py"] + sys.argv[1:]
runpy.run_path(str(BENCHMARKS / "refine_eval.py"), run_name="__main__")
