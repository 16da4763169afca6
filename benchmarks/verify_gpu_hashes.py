"""Recompute, on this machine's CPU, the exact prior's frequency-table hashes that
benchmarks/gpu_checks.py recorded on a GPU machine (CUDA and its CPU), for the same token grids
and the same prior weights.

usage: python benchmarks/verify_gpu_hashes.py PRIOR.safetensors benchmarks/results/gpu_run/gpu_checks.json
       (or the checks.json of models/recipes/gpu_refine.sh, which holds gpu_checks' under "gpu_checks")
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_checks import table_hash  # noqa: E402
from vqzip.coding.exact import ExactPrior  # noqa: E402
from vqzip.devices import cpu_name  # noqa: E402
from vqzip.nn.prior import load_prior  # noqa: E402
from vqzip.weights import weights_hash  # noqa: E402

prior_path, checks = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
checks = checks.get("gpu_checks", checks)
ex = ExactPrior(load_prior(prior_path))
res = {"machine": cpu_name(), "threads": torch.get_num_threads(),
       "prior_weights_hash": weights_hash(prior_path).hex(), "recorded_device": checks["device"]}
res["hashes_here"] = [table_hash(ex, np.array(g, dtype=np.int64)) for g in checks["grids"]]
res["equal_to_cuda"] = None if checks.get("hashes_cuda") is None else res["hashes_here"] == checks["hashes_cuda"]
res["equal_to_gpu_machine_cpu"] = res["hashes_here"] == checks["hashes_cpu"]
print(json.dumps(res, indent=2))
