"""The engine locator and launch commands (pure data: nothing is run here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rectrain.engine import engine_command, find_engine
from rectrain.errors import EnvironmentProblem


def test_default_engine_is_unstructured_paddleocr() -> None:
    engine = find_engine()
    assert engine.kind == "unstructured-paddleocr"
    assert engine.version == "2.10.0"
    assert engine.script("train").is_file()
    assert (engine.root / "ppocr").is_dir()


def _fake_checkout(root: Path, version: str = "2.9.1") -> Path:
    (root / "tools").mkdir(parents=True)
    (root / "ppocr").mkdir()
    for name in ("train.py", "export_model.py", "program.py", "eval.py"):
        (root / "tools" / name).write_text("# placeholder\n")
    (root / "paddleocr.py").write_text(f'VERSION = "{version}"\n')
    return root


def test_checkout_from_env_and_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _fake_checkout(tmp_path / "PaddleOCR")
    monkeypatch.setenv("PADDLEOCR_HOME", str(root))
    engine = find_engine()
    assert (engine.kind, engine.version, engine.root) == ("checkout", "2.9.1", root.resolve())
    monkeypatch.delenv("PADDLEOCR_HOME")
    assert find_engine(str(root)).root == root.resolve()


def test_inference_only_paddleocr_is_refused(tmp_path: Path) -> None:
    pkg = tmp_path / "paddleocr"
    pkg.mkdir()
    (pkg / "paddleocr.py").write_text("VERSION = '3.0.0'\n")
    with pytest.raises(EnvironmentProblem) as info:
        find_engine(str(pkg))
    assert "inference-only" in str(info.value)
    assert "Fix:" in str(info.value)


def test_missing_dir_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem, match="does not exist"):
        find_engine(str(tmp_path / "nope"))


def test_single_process_command() -> None:
    engine = find_engine()
    argv, env = engine_command(engine, "train", "cfg.yml", {"Global.use_gpu": False, "Global.epoch_num": 3})
    assert argv[:2] == [sys.executable, "-u"] or argv[1] == "-u"
    assert argv[2:] == [str(engine.script("train")), "-c", "cfg.yml", "-o", "Global.use_gpu=false",
                        "Global.epoch_num=3"]
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PYTHONPATH"].split(":")[0] == str(engine.root)


def test_multi_gpu_and_multi_node_commands() -> None:
    engine = find_engine()
    argv, env = engine_command(engine, "train", "c.yml", gpus=[0, 1, 2, 3])
    assert argv[2:6] == ["-m", "paddle.distributed.launch", "--gpus", "0,1,2,3"]
    assert "CUDA_VISIBLE_DEVICES" not in env or env.get("CUDA_VISIBLE_DEVICES") != "0"
    argv, _ = engine_command(engine, "train", "c.yml", gpus=[0, 1], nnodes=2, node_rank=1,
                             master="10.0.0.1:49875")
    assert argv[argv.index("--master") + 1] == "10.0.0.1:49875"
    assert argv[argv.index("--nnodes") + 1] == "2"
    assert argv[argv.index("--rank") + 1] == "1"
    with pytest.raises(ValueError):
        engine_command(engine, "train", "c.yml", nnodes=2)
    _, env = engine_command(engine, "train", "c.yml", gpus=[3])
    assert env["CUDA_VISIBLE_DEVICES"] == "3"
