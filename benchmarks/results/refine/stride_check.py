"""Mid-training check: EMA of a refine checkpoint, real coded bits, on a few Kodak images."""
import sys, json, numpy as np, torch
from fractions import Fraction
from PIL import Image
from safetensors.torch import load_file
sys.path.insert(0, "/work/main")
from vqzip.zoo import get_model
from vqzip.refine import Refiner, RefineConfig
from vqzip.refine_entropy import RefineCoder, Side
from vqzip.entropy import encode_tokens
from vqzip.codec import to_tensor, resized, scaled_size, to_image
from vqzip.train.checkpoint import read_meta
from vqzip.bench import metrics as M
torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
run = sys.argv[1]
meta = read_meta(f"{run}/refine_ckpt.safetensors")
cfg = RefineConfig(**({"entropy": "tables"} | meta["config"]))  # runs before the context model were all "tables"
r = Refiner(cfg)
t = load_file(f"{run}/refine_ckpt.safetensors")
r.load_state_dict({k[4:]: v for k, v in t.items() if k.startswith("ema/")})
r.eval(); r.freeze_tables()
coder = RefineCoder(r)
m = get_model("f16-lfq20")
scales = [Fraction(s) for s in (sys.argv[3] if len(sys.argv) > 3 else "3/2").split(",")]
res = {}
for name in ["kodim01", "kodim05", "kodim15", "kodim23"]:
    src = Image.open(f"/work/shared/data/kodak/{name}.png").convert("RGB")
    for sc in scales:
        img = resized(src, scaled_size(src.width, src.height, sc))
        x = to_tensor(img, 16)
        tok = m.tokenizer.encode(x)[0].numpy()
        sur = np.zeros(tok.shape, np.int64)
        base_bytes = len(encode_tokens(m.prior, tok, sur))
        b = m.tokenizer.decode(torch.from_numpy(tok)[None])
        def score(xr, nbytes):
            out = resized(to_image(xr, img.width, img.height), src.size)
            return nbytes * 8 / (src.width * src.height), M.psnr(src, out), M.ms_ssim(src, out)
        res.setdefault((str(sc), "base"), []).append(score(b, base_bytes))
        for rate in range(len(cfg.rates)):
            s = r.encode(x, b, rate)
            nb = len(coder.encode(s, Side(torch.from_numpy(tok), torch.from_numpy(sur), rate)))
            res.setdefault((str(sc), rate), []).append(score(r.decode(b, s, rate), base_bytes + nb))
print(run, "step", meta["step"])
for k, v in res.items():
    a = np.mean(v, 0)
    print(k, f"bpp {a[0]:.4f} psnr {a[1]:.2f} ms-ssim {a[2]:.4f}")
