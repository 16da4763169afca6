# refine_eval with every refinement layer's msssim_weight set to $W (the search's objective)
import os, runpy, sys
from vqzip.nn import refine
W = float(os.environ["W"])
orig = refine.RefineConfig.__post_init__
def post(self):
    orig(self); self.msssim_weight = W
refine.RefineConfig.__post_init__ = post
sys.path.insert(0, "/work/main/benchmarks")
sys.argv = ["refine_eval.py"] + sys.argv[1:]
runpy.run_path("/work/main/benchmarks/refine_eval.py", run_name="__main__")
