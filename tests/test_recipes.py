"""The GPU lease's scripts, in what a test can afford: models/recipes/gpu_refine.sh itself takes
about 5 minutes on the 2-core CPU at SCALE=0.01 (run by hand; see its header)."""
import subprocess

from PIL import Image

from conftest import ROOT, SMALL, macaw, run_cli


def test_the_lease_script_parses():
    subprocess.run(["bash", "-n", str(ROOT / "models/recipes/gpu_refine.sh")], check=True)


def test_a_returned_refinement_layer_codes_through_vqzip_models(tmp_path):
    """models_with_refine.sh makes a VQZIP_MODELS folder of the shipped base and the given layer."""
    out = subprocess.run(["bash", str(ROOT / "models/recipes/models_with_refine.sh"),
                          str(ROOT / "models/f16-lfq20/refine.safetensors"), str(tmp_path / "models")],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == str(tmp_path / "models")
    macaw(SMALL).save(tmp_path / "a.png")
    env = {"VQZIP_MODELS": out}
    run_cli("encode", tmp_path / "a.png", "-q", "2", "-e", "0", check=True, env=env)
    run_cli("decode", tmp_path / "a.vqz", "-o", tmp_path / "b.png", check=True, env=env)
    assert Image.open(tmp_path / "b.png").size == macaw(SMALL).size
    assert run_cli("models", env=env).returncode == 0
