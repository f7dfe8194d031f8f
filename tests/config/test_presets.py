from __future__ import annotations

import json

import pytest

from rectrain.cli.main import main
from rectrain.config.presets import PRESETS, preset_support, resolve_base
from rectrain.errors import ConfigError

REQUIRED = {"crnn-mv3", "svtr-tiny", "ppocrv4-mobile", "ppocrv5-mobile", "ppocrv5-server",
            "th-ppocrv5-mobile"}


def test_required_presets_exist_and_load():
    assert set(PRESETS) >= REQUIRED
    for name in REQUIRED:
        cfg, source = resolve_base(name)
        assert source == f"preset:{name}"
        assert cfg["Architecture"]["model_type"] == "rec"
        assert cfg["Architecture"]["algorithm"] == PRESETS[name].algorithm
        c, h, w = PRESETS[name].input_shape
        shapes = [op[k]["image_shape"] for op in cfg["Eval"]["dataset"]["transforms"]
                  for k in op if isinstance(op[k], dict) and "image_shape" in op[k]]
        assert shapes == [[c, h, w]]


def test_crnn_preset_is_small_ctc():
    cfg, _ = resolve_base("crnn-mv3")
    arch = cfg["Architecture"]
    assert (arch["Backbone"]["name"], arch["Neck"]["encoder_type"], arch["Head"]["name"]) == (
        "MobileNetV3", "rnn", "CTCHead")
    assert PRESETS["crnn-mv3"].input_shape == (3, 32, 100)


def test_resolve_base_path_and_errors(tmp_path, official):
    cfg, source = resolve_base(str(official / "rec_svtrnet.yml"))
    assert cfg["Architecture"]["algorithm"] == "SVTR"
    assert source.endswith("rec_svtrnet.yml")
    with pytest.raises(ConfigError, match="not a preset name"):
        resolve_base("crnn-mv4")
    with pytest.raises(ConfigError, match="no such file"):
        resolve_base(str(tmp_path / "nope.yml"))
    bad = tmp_path / "bad.yml"
    bad.write_text("Global:\n  a: [1, 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.yml:\d+: not valid YAML"):
        resolve_base(str(bad))


def test_engine_support_is_read_from_the_engine():
    ok, why = preset_support(PRESETS["crnn-mv3"])
    assert ok and why == ""
    # this engine's PPHGNetV2_B4 is the formula backbone without text_rec
    ok, why = preset_support(PRESETS["ppocrv5-server"])
    assert not ok
    assert "text_rec" in why and "PPHGNetV2_B4" in why


def test_cli_presets(capsys):
    assert main(["config", "presets", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} >= REQUIRED
    th = next(r for r in rows if r["name"] == "th-ppocrv5-mobile")
    assert "ppocrv5_th_dict.txt" in th["dictionary"] and th["input_shape"] == [3, 48, 320]
    assert main(["config", "presets"]) == 0
    text = capsys.readouterr().out
    assert "crnn-mv3" in text and "input 3,32,100" in text and "refused:" in text


def test_preset_names_are_forgiving():
    for alias in ("th_PP-OCRv5_mobile", "th_PP-OCRv5_mobile_rec", "TH-PPOCRV5-MOBILE"):
        _, source = resolve_base(alias)
        assert source == "preset:th-ppocrv5-mobile"
    _, source = resolve_base("PP-OCRv5_server_rec")
    assert source == "preset:ppocrv5-server"
