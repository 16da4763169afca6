"""The refinement layer (vqzip/nn/refine.py): a second token layer after the base layer, in a chunk of its own."""
import json
import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from vqzip import codec, zoo
from vqzip.coding import container
from vqzip.codec import to_tensor
from vqzip.errors import FormatError
from vqzip.nn.refine import RefineConfig, Refiner
from vqzip.nn.refine_context import second_pass_contexts
from vqzip.coding.refine_entropy import ExactContext, RefineCoder, Side

from conftest import SHARED, psnr, read_log, resume_budget, run_cli, torch_threads


@pytest.fixture(scope="module")
def point():
    """The ladder's lowest point with a refinement layer."""
    refined = [p for p in zoo.list_points() if p.refine is not None]
    assert refined, "the ladder has no refinement point"
    return min(refined, key=lambda p: p.quality)


@pytest.fixture(scope="module")
def refined(point, tmp_path_factory):
    """A small real photo and its .vqz at the refinement point."""
    d = tmp_path_factory.mktemp("refined")
    src = d / "photo.png"
    Image.open(SHARED / "kodak" / "kodim23.png").crop((300, 100, 500, 237)).save(src)
    dst = d / "photo.vqz"
    # effort 0: the single pass, so that what was sent can be recomputed (searched symbols are
    # tested in test_refine_search.py)
    run_cli("encode", src, "-o", dst, "-q", point.quality, "--effort", "0", check=True)
    return src, dst


def base_part(data: bytes) -> bytes:
    """The file cut after its base layer."""
    return data[:container.base_size(data)]


def test_refinement_beats_its_base_layer_and_costs_bits(refined):
    src, dst = refined
    data = dst.read_bytes()
    full, base = codec.decode(data), codec.decode(data, layers=1)
    ref = Image.open(src)
    assert psnr(ref, full) > psnr(ref, base) + 0.5
    inf = codec.info(data)
    assert [layer["layer"] for layer in inf["layers"]] == [1, 2]
    assert inf["layers"][1]["bytes"] > 0
    assert sum(layer["bytes"] for layer in inf["layers"]) < len(data)


@pytest.mark.parametrize("threads", [1, 2])
def test_refinement_symbols_round_trip_exactly(refined, point, threads):
    src, dst = refined
    data = dst.read_bytes()
    m = zoo.get_model(point.model)
    img = codec.resized(Image.open(src).convert("RGB"), codec.scaled_size(200, 137, point.scale))
    x = to_tensor(img, m.tokenizer.stride)
    _, tokens = codec.decode_tokens_of(data)
    sent = m.refiner.encode(x, m.tokenizer.decode(torch.from_numpy(tokens)[None]), point.refine).numpy()
    with torch_threads(threads):
        got = codec.refinement_of(data)
    assert np.array_equal(got, sent)
    assert np.abs(sent).sum() > 0  # a refinement that sends nothing would prove nothing


def test_a_file_cut_after_the_base_layer_decodes_with_layers_1(refined, tmp_path):
    _, dst = refined
    cut = tmp_path / "cut.vqz"
    cut.write_bytes(base_part(dst.read_bytes()))
    run_cli("decode", cut, "-o", tmp_path / "cut.png", "--layers", "1", check=True)
    run_cli("decode", dst, "-o", tmp_path / "base.png", "--layers", "1", check=True)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "cut.png")), np.asarray(Image.open(tmp_path / "base.png")))
    r = run_cli("decode", cut, "-o", tmp_path / "full.png")
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "refinement layer is missing" in r.stderr and "--layers 1" in r.stderr
    assert not (tmp_path / "full.png").exists()


@pytest.mark.parametrize("where", [-6, -2])  # inside the chunk's payload, and in its CRC
def test_a_damaged_refinement_layer_is_a_one_line_error(refined, tmp_path, where):
    _, dst = refined
    bad = bytearray(dst.read_bytes())
    bad[where] ^= 0x10
    f = tmp_path / "bad.vqz"
    f.write_bytes(bytes(bad))
    r = run_cli("decode", f, "-o", tmp_path / "out.png")
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "refinement layer is corrupted" in r.stderr
    run_cli("decode", f, "-o", tmp_path / "base.png", "--layers", "1", check=True)  # the base is intact


def test_a_truncated_refinement_layer_is_a_one_line_error(refined, tmp_path):
    _, dst = refined
    f = tmp_path / "short.vqz"
    f.write_bytes(dst.read_bytes()[:-20])
    r = run_cli("decode", f, "-o", tmp_path / "out.png")
    assert r.returncode == 1 and "refinement layer is truncated" in r.stderr and r.stderr.count("\n") == 1


def test_layers_beyond_what_the_file_has_are_refused(photo, tmp_path):
    dst = tmp_path / "base.vqz"
    base_only = next(p for p in zoo.list_points() if p.refine is None)
    run_cli("encode", photo, "-o", dst, "-q", base_only.quality, check=True)
    assert dst.read_bytes()[4:6] == b"\x03\x00"  # images are written as format version 3
    r = run_cli("decode", dst, "-o", tmp_path / "out.png", "--layers", "2")
    assert r.returncode == 1 and "this file has 1 layer" in r.stderr


def test_info_shows_each_layer(refined):
    _, dst = refined
    r = run_cli("info", dst, "--json", check=True)
    layers = json.loads(r.stdout)["layers"]
    assert len(layers) == 2 and all(layer["bpp"] > 0 for layer in layers)


def test_refined_files_are_format_version_3_and_name_their_refinement(refined, point):
    _, dst = refined
    data = dst.read_bytes()
    assert data[4:6] == b"\x03\x00"
    header, _ = container.unpack(data)
    assert header.extra["refine"]["rate"] == point.refine
    assert header.extra["refine"]["weights"] == zoo.get_model(point.model).refine_hash.hex()


def with_refine_header(data: bytes, **changes) -> bytes:
    """The file with fields of its refinement header replaced, re-packed with valid CRCs."""
    header, payload = container.unpack(data)
    extra = header.extra | {"refine": header.extra["refine"] | changes}
    return container.pack(container.Header(**{**header.__dict__, "extra": extra}), payload,
                          tuple(container.layers(data)), version=container.COMPACT_VERSION)


def test_a_refinement_made_by_other_weights_is_refused(refined, tmp_path):
    _, dst = refined
    forged = with_refine_header(dst.read_bytes(), weights="00" * 8)
    with pytest.raises(Exception, match="refinement layer .weights 0000000000000000. is not installed"):
        codec.decode(forged)
    assert codec.decode(forged, layers=1).size == (200, 137)


@pytest.mark.parametrize("rate", [True, -1, 5, "1", 1.0])  # 5: one past the shipped layer's five levels
def test_a_forged_refinement_rate_is_a_format_error(refined, rate):
    _, dst = refined
    forged = with_refine_header(dst.read_bytes(), rate=rate)
    with pytest.raises(FormatError, match="file is corrupted"):
        codec.decode(forged)


def random_refiner(stride: int, entropy: str = "tables", wide_context: bool = False) -> Refiner:
    """A small refinement layer with a random rate model (static tables, or a context model; with
    `wide_context`, one that also reads neighbours one by one and the ring of base tokens)."""
    torch.manual_seed(stride)
    r = Refiner(RefineConfig(stride=stride, channels=6, levels=3, widths=(8, 8, 8, 8), entropy=entropy,
                             context_groups=(2, 4), context_width=16, context_dir=3 * wide_context,
                             context_ring=wide_context))
    with torch.no_grad():
        if entropy == "tables":
            r.mu.normal_(0, 0.5)
            r.log_scale.normal_(0, 0.5)
        else:
            for p in r.context.parameters():
                p.normal_(0, 0.3)
    r.freeze_tables()
    return r.eval()


def random_side(stride: int, seed: int = 1, hb: int = 5, wb: int = 7):
    """Base tokens and surprise on an hb x wb base grid, and symbols for its refinement grid."""
    g = torch.Generator().manual_seed(seed)
    k = 16 // stride
    side = Side(torch.randint(0, 2 ** 20, (hb, wb), generator=g), torch.randint(0, 30, (hb, wb), generator=g), 1)
    return side, torch.randint(-3, 4, (6, hb * k, wb * k), generator=g).numpy()


@pytest.mark.parametrize("entropy", ["tables", "context", "wide context"])
@pytest.mark.parametrize("stride", [8, 16])
def test_symbols_round_trip_through_the_range_coder(stride, entropy):
    coder = RefineCoder(random_refiner(stride, entropy.split()[-1], entropy == "wide context"))
    side, symbols = random_side(stride)
    data = coder.encode(symbols, side)
    assert np.array_equal(coder.decode(symbols.shape, side, data), symbols)
    with pytest.raises(FormatError):  # a payload cut mid-word
        coder.decode(symbols.shape, side, data[:-1])


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_context_coded_symbols_round_trip_at_any_thread_count_and_band_height(threads, wide, monkeypatch):
    """The decoder works in bands of rows (memory); bands of one row, and either thread count, give
    the same bytes and the same symbols as one band."""
    from vqzip.coding import refine_entropy
    coder = RefineCoder(random_refiner(8, "context", wide))
    side, symbols = random_side(8, seed=3, hb=6, wb=9)
    whole = coder.encode(symbols, side)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    monkeypatch.setattr(refine_entropy, "CHUNK", 5)  # every band is one row of 18 positions
    try:
        assert coder.encode(symbols, side) == whole
        assert np.array_equal(coder.decode(symbols.shape, side, whole), symbols)
        # a pass's later steps reuse its first step's sums where memory allows: the same bytes without
        monkeypatch.setattr(refine_entropy, "REUSE_BYTES", 0)
        assert coder.encode(symbols, side) == whole
        assert np.array_equal(coder.decode(symbols.shape, side, whole), symbols)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("wide", [False, True])
def test_the_integer_context_model_gives_the_same_tables_in_any_batch_shape(wide):
    """Each position's table indices depend on its own features alone: the same rows give the same
    integers whether they come alone, in a batch, or in another order."""
    exact = ExactContext(random_refiner(8, "context", wide))
    g = torch.Generator().manual_seed(5)
    n_feats = exact.layers[0].w.shape[0]
    feats = torch.randint(0, 16, (300, n_feats), generator=g)
    mu, ls = exact.indices(feats)
    assert len(set(ls.flatten().tolist())) > 3  # the indices vary: the check is not vacuous
    perm = torch.randperm(300, generator=g)
    mu_p, ls_p = exact.indices(feats[perm])
    assert torch.equal(mu_p, mu[perm]) and torch.equal(ls_p, ls[perm])
    for i in (0, 7, 299):
        one = exact.indices(feats[i:i + 1])
        assert torch.equal(one[0][0], mu[i]) and torch.equal(one[1][0], ls[i])


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("density", [0.02, 0.1, 0.5])
def test_context_features_at_a_few_positions_equal_the_whole_bands(density, wide):
    """step_features gathers the features of a few positions (an inter frame's coded blocks) by a
    path of its own: it must give the integers the whole band's path gives there, at every step,
    band and edge, or encoder and decoder could disagree with the trained model."""
    from vqzip.nn import refine_context as rc
    cfg = random_refiner(8, "context", wide).cfg
    g = torch.Generator().manual_seed(7)
    B, C, h, w, k = 2, cfg.channels, 13, 10, cfg.stride_ratio
    symbols = torch.randint(-6, 7, (B, C, h, w), generator=g)
    tokens = torch.randint(0, 2 ** 20, (B, -(-h // k), -(-w // k)), generator=g)
    surprise = torch.randint(0, 80, tokens.shape, generator=g)
    rate, key = torch.tensor([0, 1]), rc.order_key(cfg, h, w)
    sparse = 0
    for step in range(rc.n_steps(cfg)):
        for rows in (slice(0, h), slice(0, 1), slice(4, 9), slice(h - 2, h)):
            at = (torch.rand(rows.stop - rows.start, w, generator=g) < density) & (key[:, rows] == step).any(0)
            whole = rc.step_features(cfg, symbols, key, step, tokens, surprise, rate, k, rows)[..., at]
            assert torch.equal(rc.step_features(cfg, symbols, key, step, tokens, surprise, rate, k, rows, at=at), whole)
            sparse += int(at.sum()) * 8 < at.numel()
    assert sparse > 10  # the gathering path ran, not only the whole band's


@pytest.mark.parametrize("passes", [4, 2])
@pytest.mark.parametrize("wide", [False, True])
def test_training_gives_every_symbol_its_coding_steps_distribution(passes, wide):
    """RefineContext.params (training) runs each step at its pass's positions only and, with four
    passes, reuses a pass's features from step to step: it must give each symbol what the model
    gives on step_features' own features of the step that codes it."""
    from vqzip.nn import refine_context as rc
    torch.manual_seed(3)
    cfg = RefineConfig(channels=6, levels=3, widths=(8, 8, 8, 8), context_groups=(2, 4), context_width=16,
                       context_passes=passes, context_dir=3 * wide, context_ring=wide)
    model = rc.RefineContext(cfg, cfg.stride_ratio)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    g = torch.Generator().manual_seed(4)
    symbols = torch.randint(-3, 4, (2, 6, 10, 14), generator=g)
    tokens, surprise = torch.randint(0, 2 ** 20, (2, 5, 7), generator=g), torch.randint(0, 40, (2, 5, 7), generator=g)
    rate = torch.tensor([0, 2])
    with torch.no_grad():
        mu, ls = model.params(symbols, tokens, surprise, rate)
        key = rc.order_key(cfg, 10, 14)
        for t in range(rc.n_steps(cfg)):
            m, l = model(rc.step_features(cfg, symbols, key, t, tokens, surprise, rate, cfg.stride_ratio))
            mine = (key == t)[None].expand_as(mu)
            assert torch.allclose(mu[mine], m[mine], atol=1e-5) and torch.allclose(ls[mine], l[mine], atol=1e-5)


def test_the_wide_contexts_features_are_the_neighbours_and_the_token_ring():
    """context_dir's features are each neighbour's symbol as far as it is coded (zero before, and
    off the grid); context_ring's, the neighbouring base tokens' bits as -1 / +1 and their surprise
    (all zero off the grid)."""
    from vqzip.nn import refine_context as rc
    cfg = random_refiner(8, "context", True).cfg
    g = torch.Generator().manual_seed(9)
    B, C, h, w, k = 1, cfg.channels, 6, 8, cfg.stride_ratio
    symbols = torch.randint(1, 4, (B, C, h, w), generator=g)  # never 0: a zero feature means "not known"
    tokens = torch.randint(0, 2 ** 20, (B, h // k, w // k), generator=g)
    surprise = torch.randint(0, 80, tokens.shape, generator=g)
    key = rc.order_key(cfg, h, w)
    plain = rc.n_features(RefineConfig(**(cfg.to_dict() | {"context_dir": 0, "context_ring": False})), k, len(cfg.rates))
    assert rc.n_features(cfg, k, len(cfg.rates)) == plain + 8 * cfg.context_dir + 8 * 21
    for step in (0, 5, rc.n_steps(cfg) - 1):
        f = rc.step_features(cfg, symbols, key, step, tokens, surprise, torch.tensor([1]), k)[0]
        for i, (dy, dx) in enumerate(rc._OFFSETS):
            for y, x in ((0, 0), (3, 4), (h - 1, w - 1)):
                ny, nx = y + dy, x + dx
                inside = 0 <= ny < h and 0 <= nx < w
                for c in range(cfg.context_dir):
                    known = inside and int(key[c, ny, nx]) < step
                    assert int(f[plain + i * cfg.context_dir + c, y, x]) == (int(symbols[0, c, ny, nx]) if known else 0)
                ty, tx = y // k + dy, x // k + dx
                ring = f[plain + 8 * cfg.context_dir + 21 * i:plain + 8 * cfg.context_dir + 21 * (i + 1), y, x]
                if 0 <= ty < h // k and 0 <= tx < w // k:
                    bits = [(int(tokens[0, ty, tx]) >> b) & 1 for b in range(20)]
                    assert ring[:20].tolist() == [2 * b - 1 for b in bits] and int(ring[20]) == min(63, int(surprise[0, ty, tx]))
                else:
                    assert not ring.any()


@pytest.mark.parametrize("wide", [False, True])
def test_the_context_models_float_twin_estimates_the_coded_bits(wide):
    """Training's float model and the coder's integer one agree to well under 1 % of the bits."""
    from vqzip.nn.refine_context import logistic_bits
    r = random_refiner(8, "context", wide)
    side, symbols = random_side(8, seed=4, hb=8, wb=8)
    with torch.no_grad():
        r.context.out.weight.mul_(0.1)  # inside the grid of (mu, log-scale) the tables cover
        r.context.skip.weight.mul_(0.01)
        s = torch.from_numpy(symbols)[None]
        mu, ls = r.context.params(s, side.tokens[None], side.surprise[None], torch.tensor([side.rate]))
        estimate = float(logistic_bits(s.float(), mu, ls.exp(), r.cfg.levels).sum())
    coded = 8 * len(RefineCoder(r).encode(symbols, side))
    assert abs(coded - estimate) < 0.01 * estimate + 64


def test_second_pass_contexts_see_only_first_pass_neighbours():
    ctx = torch.zeros(1, 1, 3, 3, dtype=torch.long)
    s = torch.zeros(1, 1, 3, 3, dtype=torch.long)
    quiet = second_pass_contexts(ctx, s)
    assert quiet[0, 0].tolist() == [[0, 1, 0], [1, 0, 1], [0, 1, 0]]  # the second pass has slots of its own
    s[0, 0, 0, 1] = 5  # a second-pass position: its value must not change anyone's context
    assert torch.equal(second_pass_contexts(ctx, s), quiet)
    s[0, 0, 0, 0] = 5  # a first-pass position: its second-pass neighbours move up a bucket
    got = second_pass_contexts(ctx, s)[0, 0]
    assert got[0, 1] > 1 and got[1, 0] > 1 and got[2, 1] == 1 and got[0, 0] == 0 and got[1, 1] == 0


@pytest.mark.parametrize("entropy", ["tables", "context"])
def test_tables_are_integers_that_never_give_a_symbol_zero_probability(entropy):
    r = random_refiner(8, entropy)
    assert r.tables.dtype == torch.int32 and int(r.tables.min()) >= 1
    assert r.tables.shape[-1] == 7
    if entropy == "tables":
        assert r.tables.shape == (len(r.cfg.rates), r.cfg.contexts, 6, 7)


def test_an_untrained_refinement_is_a_dct_coder_of_the_residual():
    """Training starts from a working transform code, not from nothing: zero symbols add nothing,
    and the first symbols halve the error of a smooth residual."""
    r = Refiner(RefineConfig(channels=16, widths=(8, 8, 8, 8))).eval()
    base = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.equal(r.decode(base, torch.zeros(16, 4, 4, dtype=torch.long), 2), base)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    x = (base + 0.3 * torch.stack([yy, xx, yy * xx])[None]).clamp(-1, 1)
    out = r.decode(base, r.encode(x, base, 2), 2)
    assert ((out - x) ** 2).mean() < 0.5 * ((base - x) ** 2).mean()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    (d / "bsds500").mkdir()
    for f in sorted((SHARED / "train" / "bsds500").glob("*.jpg"))[:2]:
        shutil.copy(f, d / "bsds500")
    return d


def test_refine_trains_resumes_and_exports(tmp_path, data):
    m = zoo.get_model("f16-lfq20")
    out = tmp_path / "run"
    args = ["train", "refine", data, "--tokenizer", m.path / "tokenizer.safetensors", "--prior",
            m.path / "prior.safetensors", "-o", out, "--batch", "2", "--crop", "64", "--fresh", "1",
            "--channels", "4", "--rates", "800,200", "--msssim-weight", "2500", "--ssim2-weight", "3"]
    run_cli(*args, "--minutes", "0.05", check=True)
    log = read_log(out / "refine_log.jsonl")
    first = log[-1]["step"]
    # the last step logs the fixed crops as the codec would code them, at each rate level: the
    # finer rate (lambda 200) spends more bits for a better picture
    val = log[-1]["val"]
    assert len(val) == 2 and all(v["bpp"] > 0 and 0 < v["ms_ssim"] <= 1 and v["J"] > 0 and v["ssim2"] < 100 for v in val)
    assert val[1]["bpp"] > val[0]["bpp"] and val[1]["psnr"] > val[0]["psnr"]
    run_cli(*args, "--minutes", resume_budget(out / "refine_log.jsonl"), check=True)  # resumes the same run
    last = read_log(out / "refine_log.jsonl")[-1]["step"]
    assert last > first
    from vqzip.nn.refine import load_refiner
    r = load_refiner(out / "refine.safetensors")
    assert r.cfg.rates == (800.0, 200.0) and r.cfg.entropy == "context" and r.cfg.channels == 4
    assert r.cfg.msssim_weight == 2500 and r.cfg.ssim2_weight == 3  # the layer carries its objective, for the encoder search
    r2 = run_cli(*args, "--minutes", "0.1", "--stride", "16")  # another config in the same folder
    assert r2.returncode == 1 and "another refinement config" in r2.stderr


def test_layers_made_before_a_field_existed_load_with_what_they_had():
    """v2 and v3 recorded no context_dir or context_ring (they read neither); the first layer no
    entropy model (static tables). Today's defaults must not leak into them."""
    from vqzip.nn.refine import LEGACY
    old = RefineConfig.from_saved({"stride": 8, "channels": 48})
    assert (old.entropy, old.context_width, old.context_dir, old.context_ring) == ("tables", 64, 0, False)
    assert RefineConfig.from_saved(RefineConfig().to_dict()) == RefineConfig()
    assert old.msssim_weight == 1500  # every layer before the field was trained and searched with it
    assert old.ssim2_weight == 0  # and none before version 6 with SSIMULACRA2
    v3 = zoo.get_model("f16-lfq20").path / "refine_v3.safetensors"
    from vqzip.nn.refine import load_refiner
    cfg = load_refiner(v3).cfg
    assert (cfg.context_dir, cfg.context_ring, cfg.context_width) == (0, False, 64) and set(LEGACY) <= set(cfg.to_dict())


def test_a_grown_context_model_starts_as_the_one_it_grew_from():
    """--init with a context model that reads more features or is wider: the saved weights fill
    the leading block and the new inputs and hidden units start silent, so training starts from
    the same distributions, not from scratch."""
    from vqzip.nn.refine import load_refiner
    from vqzip.train.refine import start_from
    path = zoo.get_model("f16-lfq20").path
    g = torch.Generator().manual_seed(2)
    symbols = torch.randint(-3, 4, (2, 48, 8, 12), generator=g)
    tokens, surprise = torch.randint(0, 2 ** 20, (2, 4, 6), generator=g), torch.randint(0, 40, (2, 4, 6), generator=g)
    rate = torch.tensor([0, 2])
    # v3 (no optional features) grown as v4 was; v4 made wider
    for name, more in (("refine_v3", {"context_dir": 24, "context_ring": True, "context_width": 192}),
                       ("refine", {"context_width": 256})):
        old = load_refiner(path / f"{name}.safetensors").eval()
        new = Refiner(RefineConfig(**(old.cfg.to_dict() | more)))
        fresh = start_from(new, str(path / f"{name}.safetensors"))
        assert "context.fc1.weight (grown)" in fresh and not any(k.startswith(("encoder", "decoder")) for k in fresh)
        with torch.no_grad():
            a, b = old.context.params(symbols, tokens, surprise, rate), new.eval().context.params(symbols, tokens, surprise, rate)
        assert torch.allclose(a[0], b[0], atol=1e-5) and torch.allclose(a[1], b[1], atol=1e-5)
    # fewer single neighbours than saved: the old columns would move, so the context model starts fresh
    new = Refiner(RefineConfig(**(old.cfg.to_dict() | {"context_dir": 8})))
    fresh = start_from(new, str(path / "refine.safetensors"))
    assert "context.fc1.weight" in fresh and "encoder.linear.weight" not in fresh


def test_rate_levels_added_by_init_leave_the_trained_ones_as_they_were():
    """--init with more --rates (the saved ones among them): each saved level keeps its gains and
    its context model's distributions, wherever it now sits in the list, and a new level between
    two starts between them."""
    from vqzip.nn.refine import load_refiner
    from vqzip.train.refine import start_from
    path = zoo.get_model("f16-lfq20").path / "refine_v4.safetensors"  # the last layer with three levels
    old = load_refiner(path).eval()
    g = torch.Generator().manual_seed(3)
    symbols = torch.randint(-3, 4, (1, 48, 8, 12), generator=g)
    tokens, surprise = torch.randint(0, 2 ** 20, (1, 4, 6), generator=g), torch.randint(0, 40, (1, 4, 6), generator=g)
    rates = (2500.0, 1600.0, 1000.0, 400.0, 160.0)  # one new level inside, one past the end
    new = Refiner(RefineConfig(**(old.cfg.to_dict() | {"rates": rates, "init_steps": ()})))
    fresh = start_from(new, str(path))
    assert fresh == []
    new.eval()
    for i, lam in enumerate(old.cfg.rates):
        j = rates.index(lam)
        assert torch.equal(new.log_gain[j], old.log_gain[i])
        with torch.no_grad():
            a = old.context.params(symbols, tokens, surprise, torch.tensor([i]))
            b = new.context.params(symbols, tokens, surprise, torch.tensor([j]))
        assert torch.allclose(a[0], b[0], atol=1e-5) and torch.allclose(a[1], b[1], atol=1e-5)
    lo, mid, hi = new.log_gain[0], new.log_gain[1], new.log_gain[2]
    assert bool(((mid - lo) * (hi - mid) >= 0).all())  # between its neighbours, channel by channel
    # past the end: the step from 400 to 160 continues the one from 1000 to 400, in log lambda
    step = (new.log_gain[3] - new.log_gain[2]) / math.log(1000 / 400)
    assert torch.allclose(new.log_gain[4] - new.log_gain[3], step * math.log(400 / 160), atol=2e-2)  # the weights are bf16


def test_the_entropy_model_trains_alone_resumes_and_leaves_the_transform(tmp_path, data):
    """--freeze-transform: the fast path that trains on the frozen transform's symbols; it logs
    the fixed crops' bits, resumes, and exports the transform as it was."""
    from vqzip.nn.refine import load_refiner
    m = zoo.get_model("f16-lfq20")
    out = tmp_path / "run"
    args = ["train", "refine", data, "--tokenizer", m.path / "tokenizer.safetensors", "--prior",
            m.path / "prior.safetensors", "-o", out, "--batch", "2", "--crop", "64", "--fresh", "1",
            "--init", m.path / "refine.safetensors", "--freeze-transform", "--context-dir", "4", "--context-ring"]
    run_cli(*args, "--minutes", "0.05", check=True)
    log = read_log(out / "refine_log.jsonl")
    first = log[-1]["step"]
    assert len(log[-1]["val_bpp"]) == len(m.refiner.cfg.rates) and all(v > 0 for v in log[-1]["val_bpp"])
    run_cli(*args, "--minutes", resume_budget(out / "refine_log.jsonl"), check=True)
    log = read_log(out / "refine_log.jsonl")
    assert log[-1]["step"] > first
    got, shipped = load_refiner(out / "refine.safetensors"), m.refiner
    assert got.cfg.context_dir == 4 and got.cfg.context_ring
    mine, theirs = got.state_dict(), shipped.state_dict()
    for k in theirs:
        if not k.startswith("context."):
            assert torch.equal(mine[k], theirs[k]), k
    assert not torch.equal(mine["context.fc2.weight"], theirs["context.fc2.weight"])  # the entropy model trained


def test_refine_training_defaults_to_the_shipped_configuration(tmp_path, data):
    """Without --stride, --channels or --rates the command trains what the card says it did."""
    m = zoo.get_model("f16-lfq20")
    out = tmp_path / "run"
    run_cli("train", "refine", data, "--tokenizer", m.path / "tokenizer.safetensors", "--prior",
            m.path / "prior.safetensors", "-o", out, "--batch", "2", "--crop", "64", "--fresh", "1",
            "--minutes", "0.02", check=True)
    from vqzip.nn.refine import load_refiner
    assert load_refiner(out / "refine.safetensors").cfg == m.refiner.cfg


def test_an_explicit_point_codes_like_its_ladder_level(refined, point):
    src, dst = refined
    assert codec.encode_image(src, point=point, effort=0) == dst.read_bytes()
