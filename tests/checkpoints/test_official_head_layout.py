"""The official Thai architecture (PPLCNetV3 + MultiHead CTC/NRTR), built by the engine itself
with random weights: rectrain's head layouts match the engine's tensors, and a head grown for
appended characters has exactly the shapes the engine builds for the grown dictionary, loads
without a skipped tensor, and scores the old classes like the original exported model.
(The released weights are not available offline; these are the same names and shapes.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from rectrain.checkpoints.extend_dict import extend_dictionary
from rectrain.checkpoints.pdparams import expected_sizes, head_kinds, head_tensors, load_state
from rectrain.engine.launch import engine_env
from rectrain.model.export import export_model

from .extend_run import raw_outputs

pytestmark = pytest.mark.slow

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "paddleocr-configs"
CONFIG = SHARED / "th_PP-OCRv5_mobile_rec.yaml"
DICT = SHARED / "ppocrv5_th_dict.txt"

# the engine's own model for a config: tools/train.py's out_channels_list, random weights
_SAVE_RANDOM = """
import sys, paddle
from tools.program import load_config
from ppocr.modeling.architectures import build_model
from ppocr.postprocess import build_post_process
paddle.seed(7)
config = load_config(sys.argv[1])
n = len(build_post_process(config["PostProcess"], config["Global"]).character)
config["Architecture"]["Head"]["out_channels_list"] = {
    "CTCLabelDecode": n, "SARLabelDecode": n + 2, "NRTRLabelDecode": n + 3}
paddle.save(build_model(config["Architecture"]).state_dict(), sys.argv[2] + ".pdparams")
"""


@pytest.fixture(scope="module")
def engine():
    from rectrain.engine import find_engine
    from rectrain.errors import EnvironmentProblem

    try:
        return find_engine()
    except EnvironmentProblem as exc:
        pytest.skip(f"no PaddleOCR engine: {exc}")


def _config(tmp: Path, name: str, dict_path: Path) -> Path:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    config["Global"].update({"character_dict_path": str(dict_path.resolve()), "use_gpu": False,
                             "save_model_dir": str(tmp / "out")})
    path = tmp / f"{name}.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _engine_state(engine, tmp: Path, cfg: Path, prefix: Path) -> dict:
    out = subprocess.run([engine.python, "-c", _SAVE_RANDOM, str(cfg), str(prefix)],
                         env=engine_env(engine), cwd=str(tmp), capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return load_state(prefix.with_suffix(".pdparams"))


def test_grown_official_head_matches_the_engine(tmp_path, engine):
    if not CONFIG.is_file() or not DICT.is_file():
        pytest.skip(f"official configs not found at {SHARED}")
    cfg = _config(tmp_path, "th", DICT)
    state = _engine_state(engine, tmp_path, cfg, tmp_path / "random")
    kinds = {k: t.classes for k, t in head_kinds(state).items()}
    assert kinds == {"ctc": 526, "nrtr": 530}  # blank + 524 lines + space; + 3 tokens + 1 row
    assert expected_sizes(yaml.safe_load(cfg.read_text(encoding="utf-8")), 525) == kinds

    plus = tmp_path / "th_plus.txt"
    plus.write_bytes(DICT.read_bytes() + "ฃ\n๛\n".encode())
    grown = extend_dictionary(tmp_path / "random.pdparams", DICT, plus,
                              tmp_path / "grown.pdparams", use_space_char=True).out
    # the engine's model for the grown dictionary has exactly these shapes, tensor by tensor
    cfg_plus = _config(tmp_path, "th_plus", plus)
    ref = _engine_state(engine, tmp_path, cfg_plus, tmp_path / "ref_plus")
    got = load_state(grown)
    shapes = {k: tuple(v.shape) for k, v in got.items() if hasattr(v, "shape")}
    assert shapes == {k: tuple(v.shape) for k, v in ref.items() if hasattr(v, "shape")}
    assert {t.key for t in head_tensors(got)} == {
        "head.ctc_head.fc.weight", "head.ctc_head.fc.bias", "head.gtc_head.tgt_word_prj.weight",
        "head.gtc_head.embedding.embedding.weight"}

    # exported: the old classes score as before (up to the softmax normaliser), same argmax
    base = export_model(config=str(cfg), checkpoint=str(tmp_path / "random"),
                        out_dir=str(tmp_path / "m_base"))
    plus_model = export_model(config=str(cfg_plus), checkpoint=str(grown.with_suffix("")),
                              out_dir=str(tmp_path / "m_plus"))
    from PIL import Image, ImageDraw

    images = []
    for i, word in enumerate(["สวัสดี", "ก่อน", "abc12"]):
        img = Image.new("RGB", (320, 48), "white")
        ImageDraw.Draw(img).text((8, 12), word, fill="black")
        images.append(tmp_path / f"w{i}.png")
        img.save(images[-1])
    a, b = raw_outputs(base, images), raw_outputs(plus_model, images)
    assert b.shape[-1] == a.shape[-1] + 2
    old = list(range(525)) + [527]  # blank + 524 lines stay; the space moved from 525 to 527
    # log-probabilities of the old classes differ by one constant per frame (the normaliser);
    # probabilities below 1e-6 are float32 rounding noise in the log (a random model is peaked)
    live = a > 1e-6
    d = np.log(np.maximum(b[..., old], 1e-30)) - np.log(np.maximum(a, 1e-30))
    offset = np.where(live, d, 0).sum(-1, keepdims=True) / live.sum(-1, keepdims=True)
    assert float(np.abs(np.where(live, d - offset, 0)).max()) < 1e-5
    assert live.sum() >= a.shape[0] * a.shape[1]  # at least one live class per frame
    assert (np.asarray(old)[b[..., old].argmax(-1)] == b.argmax(-1)).all()  # no new class wins
