"""The official Thai PP-OCRv5 recognition config (PPLCNetV3 + MultiHead, the dirty official
dictionary) through export (PIR on Paddle 3) and inference, checked image by image against the
engine's own checkpoint inference (tools/infer_rec.py). Random initial weights, so no training
is needed; they read every image much alike, so this proves the path works and agrees, while
tests/model/test_model_evaluate.py checks agreement on a trained model (slow: runs the engine)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from rectrain.engine.launch import engine_command, engine_env
from rectrain.model.export import export_model
from rectrain.model.info import dictionary_chars
from rectrain.model.predict import predict

pytestmark = pytest.mark.slow

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "paddleocr-configs"
CONFIG = SHARED / "th_PP-OCRv5_mobile_rec.yaml"
DICT = SHARED / "ppocrv5_th_dict.txt"

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
def official(tmp_path_factory, engine):
    if not CONFIG.is_file() or not DICT.is_file():
        pytest.skip(f"official configs not found at {SHARED}")
    tmp = tmp_path_factory.mktemp("official")
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    config["Global"].update({"character_dict_path": str(DICT.resolve()), "use_gpu": False,
                             "save_model_dir": str(tmp / "out")})
    cfg = tmp / "config.yml"
    cfg.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    prefix = tmp / "random"
    out = subprocess.run([engine.python, "-c", _SAVE_RANDOM, str(cfg), str(prefix)],
                         env=engine_env(engine), cwd=str(tmp), capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    model = export_model(config=str(cfg), checkpoint=str(prefix), out_dir=str(tmp / "model"))
    return {"tmp": tmp, "config": cfg, "prefix": prefix, "model": model}


def test_model_json_of_the_official_thai_model(official):
    info = json.loads((official["model"] / "model.json").read_text(encoding="utf-8"))
    assert info["algorithm"] == "SVTR_LCNet"
    assert info["architecture"]["Backbone"] == "PPLCNetV3" and info["architecture"]["Head"] == "MultiHead"
    assert info["rec_image_shape"] == [3, 48, 320]  # from Eval RecResizeImg, not RecConAug's HWC
    assert info["use_space_char"] is True
    # Read as the engine reads it: the empty line is a class too; the current upstream file
    # has 524 lines, so with the space 525 characters (526 classes with the CTC blank).
    chars = dictionary_chars(DICT, use_space_char=True)
    assert info["dictionary"]["classes"] == len(chars) == len(DICT.read_bytes().split(b"\n")) - 1 + 1
    assert len(chars) == 525 and "" in chars and "ก" in chars and "ωก" not in chars
    assert info["dictionary"]["file"] == DICT.name
    if int(info["paddle_version"].split(".")[0]) >= 3:
        assert info["model_format"] == "pir-json"


def test_exported_official_model_reads_like_its_checkpoint(official, tiny_run, engine):
    res = official["tmp"] / "infer.txt"
    argv, env = engine_command(engine, "infer_rec", str(official["config"]), {
        "Global.checkpoints": str(official["prefix"]), "Global.infer_img": str(tiny_run["images"]),
        "Global.save_res_path": str(res)})
    out = subprocess.run(argv, env=env, cwd=str(official["tmp"]), capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    reference = {}
    for line in res.read_text(encoding="utf-8").splitlines():
        path, text, score = line.split("\t")
        reference[Path(path).name] = (text, float(score))
    preds = predict(str(official["model"]), [str(tiny_run["images"])])
    assert len(preds) == len(reference) == 18
    assert all(p.text for p in preds)  # 500+ classes, random weights: never an empty reading
    for p in preds:
        text, score = reference[Path(p.path).name]
        assert p.text == text, p.path
        assert p.score == pytest.approx(score, abs=1e-4), p.path
