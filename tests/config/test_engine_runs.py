"""Built configs start training in the real engine (CPU, tiny data, a few steps).

Every official 2.x config in ../shared/paddleocr-configs is built and run, except the ones this
engine cannot run: those must be refused by the build (asserted here and in test_build.py).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from rectrain.config.build import create_recognition_training_config as build
from rectrain.engine import engine_command, find_engine
from rectrain.errors import ConfigError

from .conftest import OFFICIAL

STEP = re.compile(r"epoch: \[1/1\], global_step: \d+")

# official config -> build options (small inputs keep the CPU runs short)
RUNNABLE = {
    "rec_svtrnet.yml": {},
    "PP-OCRv4_mobile_rec.yml": {"image_shape": "3,48,160"},
    "PP-OCRv5_mobile_rec.yml": {"image_shape": "3,48,160"},
    "th_PP-OCRv5_mobile_rec.yaml": {"image_shape": "3,48,160"},
}
# official config -> what the refusal names (this engine lacks what they need)
REFUSED = {
    "PP-OCRv5_server_rec.yml": "Architecture.Backbone.text_rec",
    "rec_mv3_none_bilstm_ctc_v1.yml": "PaddleOCR 1.x config",
}


def _train(config: Path, tmp_path: Path) -> str:
    argv, env = engine_command(find_engine(), "train", str(config))
    env["OMP_NUM_THREADS"] = "1"
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300,
                              cwd=str(tmp_path))
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"engine run timed out: {(exc.stdout or '')[-2000:]}")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert STEP.search(out), out[-4000:]
    return out


def test_every_official_config_is_covered(official):
    files = {p.name for p in official.glob("*.y*ml")}
    assert files == set(RUNNABLE) | set(REFUSED), "a new official config needs a test entry"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RUNNABLE))
def test_official_config_trains(name, tiny, tmp_path, official):
    res = build(str(official / name), tiny.train, tiny.val, tiny.dict_path,
                tmp_path / "run.yml", epochs=1, batch_size=4, device="cpu", **RUNNABLE[name])
    out = _train(res.path, tmp_path)
    assert "best metric" in out  # evaluated within the single epoch
    assert (Path(res.config["Global"]["save_model_dir"]) / "best_accuracy.pdparams").is_file()


@pytest.mark.slow
def test_crnn_preset_trains(tiny, tmp_path):
    res = build("crnn-mv3", tiny.train, tiny.val, tiny.dict_path, tmp_path / "crnn.yml",
                epochs=1, batch_size=4, device="cpu")
    out = _train(res.path, tmp_path)
    assert "best metric" in out
    # the engine's own weights: their head fits this dictionary, and not a larger one
    weights = Path(res.config["Global"]["save_model_dir"]) / "best_accuracy.pdparams"
    again = build("crnn-mv3", tiny.train, tiny.val, tiny.dict_path, tmp_path / "ft.yml",
                  epochs=1, batch_size=4, device="cpu", pretrained=weights)
    assert again.config["Global"]["pretrained_model"] == str(weights.resolve())
    bigger = tmp_path / "bigger.txt"
    bigger.write_text(tiny.dict_path.read_text(encoding="utf-8") + "X\nY\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="silently re-initialize"):
        build("crnn-mv3", tiny.train, tiny.val, bigger, tmp_path / "ft2.yml", epochs=1,
              batch_size=4, device="cpu", pretrained=weights)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_official_config_refused(name, tiny, tmp_path):
    if not OFFICIAL.is_dir():
        pytest.skip(f"official configs not found at {OFFICIAL}")
    with pytest.raises(ConfigError, match=re.escape(REFUSED[name])):
        build(str(OFFICIAL / name), tiny.train, tiny.val, tiny.dict_path, tmp_path / "x.yml",
              batch_size=4, image_shape="3,48,160", device="cpu")
