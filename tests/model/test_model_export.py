"""Export a real checkpoint with the engine's exporter (slow: runs the engine)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from rectrain.errors import UserError
from rectrain.fsutil import sha256_file
from rectrain.model.export import export_model, resolve_checkpoint
from rectrain.model.info import read_model_info

from .model_tinyrun import TEST_EPOCHS as EPOCHS

pytestmark = pytest.mark.slow


def test_model_json_describes_the_model(exported: Path, tiny_run, engine):
    info = json.loads((exported / "model.json").read_text(encoding="utf-8"))
    assert info["engine"] == {"kind": engine.kind, "version": engine.version}
    assert info["paddle_version"][0].isdigit()
    assert info["algorithm"] == "CRNN"
    assert info["architecture"]["Neck"] == "SequenceEncoder"
    assert info["rec_image_shape"] == [3, 32, 100]
    assert info["decode"] == {"img_mode": "BGR", "ignore_orientation": False}
    assert info["use_space_char"] is False
    assert info["max_text_length"] == 10
    dictionary = info["dictionary"]
    assert dictionary["file"] == "dict.txt"
    assert dictionary["sha256"] == sha256_file(tiny_run["dict"])
    lines = tiny_run["dict"].read_text(encoding="utf-8").splitlines()
    assert dictionary["classes"] == len(lines) and dictionary["classes_with_ctc_blank"] == len(lines) + 1
    ckpt = info["checkpoint"]
    assert ckpt["name"] == "best_accuracy"
    assert ckpt["path"] == str((tiny_run["run_dir"] / "checkpoints" / "best_accuracy").resolve())
    assert ckpt["epoch"] == EPOCHS and ckpt["global_step"] == EPOCHS * 3  # 18 images, batch 8
    assert set(info["metrics"]) >= {"acc", "norm_edit_dis"}
    # The model files, the dictionary and the config are all there, and listed with hashes.
    # Paddle 3 exports its own (PIR) format; older Paddle the .pdmodel program.
    assert info["model_format"] == ("pir-json" if int(info["paddle_version"].split(".")[0]) >= 3
                                    else "pdmodel")
    program = "inference.pdmodel" if info["model_format"] == "pdmodel" else "inference.json"
    for name in (program, "inference.pdiparams", "inference.yml"):
        assert info["files"][name] == sha256_file(exported / name)
    assert (exported / "dict.txt").read_bytes() == tiny_run["dict"].read_bytes()
    assert yaml.safe_load((exported / "config.yml").read_text(encoding="utf-8"))["Architecture"][
        "algorithm"] == "CRNN"
    assert read_model_info(exported)["algorithm"] == "CRNN"
    # Nothing left behind by the atomic build.
    assert not [p for p in exported.parent.iterdir() if p.name.startswith(".")]


def test_checkpoint_names_and_prefixes_resolve(tiny_run):
    run_dir = tiny_run["run_dir"]
    config = yaml.safe_load((run_dir / "config.yml").read_text(encoding="utf-8"))
    latest = run_dir / "checkpoints" / "latest"
    assert resolve_checkpoint("latest", run_dir, config) == latest.resolve()
    assert resolve_checkpoint(str(latest), None, config) == latest.resolve()
    assert resolve_checkpoint(str(latest) + ".pdparams", None, config) == latest.resolve()
    with pytest.raises(UserError) as err:
        resolve_checkpoint("iter_epoch_99", run_dir, config)
    assert "best_accuracy" in str(err.value) and "latest" in str(err.value)


def test_refuses_existing_output_unless_forced(exported: Path, tiny_run):
    marker = exported / "model.json"
    before = marker.read_bytes()
    with pytest.raises(UserError, match="already exists"):
        export_model(str(tiny_run["run_dir"]), out_dir=str(exported))
    assert marker.read_bytes() == before


def test_force_replaces_with_another_checkpoint(tiny_run, tmp_path):
    """--force replaces a model folder rectrain exported, never a folder with other content."""
    out = tmp_path / "m"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(UserError, match="other content"):
        export_model(str(tiny_run["run_dir"]), checkpoint="latest", out_dir=str(out), overwrite=True)
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"
    (out / "notes.txt").unlink()
    export_model(str(tiny_run["run_dir"]), checkpoint="best_accuracy", out_dir=str(out))
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(UserError, match="notes.txt"):  # a file the user added to the model folder
        export_model(str(tiny_run["run_dir"]), checkpoint="latest", out_dir=str(out), overwrite=True)
    (out / "notes.txt").unlink()
    export_model(str(tiny_run["run_dir"]), checkpoint="latest", out_dir=str(out), overwrite=True)
    assert read_model_info(out)["checkpoint"]["name"] == "latest"


def test_refuses_a_dictionary_that_does_not_fit_the_checkpoint(tiny_run, tmp_path):
    """The exporter only warns about a head of the wrong size (and keeps random weights):
    export must refuse instead of writing a model that reads garbage."""
    run_dir = tiny_run["run_dir"]
    bigger = tmp_path / "dict.txt"
    bigger.write_text(tiny_run["dict"].read_text(encoding="utf-8") + "X\nY\n", encoding="utf-8")
    config = yaml.safe_load((run_dir / "config.yml").read_text(encoding="utf-8"))
    config["Global"]["character_dict_path"] = str(bigger)
    cfg = tmp_path / "config.yml"
    cfg.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "model"
    with pytest.raises(UserError, match="does not fit"):
        export_model(str(run_dir), config=str(cfg), out_dir=str(out))
    assert not out.exists()
    assert (tmp_path / "model.export-failed.log").is_file()


def test_missing_run_dir_and_non_rec_config_are_user_errors(tmp_path, tiny_run):
    with pytest.raises(UserError, match="does not exist"):
        export_model(str(tmp_path / "nope"), out_dir=str(tmp_path / "m"))
    run = tmp_path / "run"
    shutil.copytree(tiny_run["run_dir"], run)
    config = yaml.safe_load((run / "config.yml").read_text(encoding="utf-8"))
    config["Architecture"]["model_type"] = "det"
    (run / "config.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(UserError, match="model_type"):
        export_model(str(run), out_dir=str(tmp_path / "m"))
