"""`rectrain bench loader`: the engine's own data pipeline, measured (real engine, tiny data)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rectrain.config.build import create_recognition_training_config as build
from rectrain.engine import find_engine
from rectrain.loaderbench.bench import PROBE, loader_bench_command

SRC = Path(__file__).resolve().parents[2] / "src"


def _cli(*args: str) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.run([sys.executable, "-m", "rectrain", "--log-level", "warning", *args],
                          capture_output=True, text=True, env=env, timeout=300)


def test_command_is_data(engine) -> None:  # noqa: ANN001
    argv, env = loader_bench_command(engine, "/x/c.yml", 3, seconds=2,
                                     overrides={"Train.loader.use_shared_memory": False})
    assert argv[:3] == [engine.python, "-u", str(PROBE)]
    assert argv[argv.index("--workers") + 1] == "3"
    assert argv[-2:] == ["-o", "Train.loader.use_shared_memory=false"]
    assert env["PYTHONPATH"].split(":")[0] == str(engine.root)


@pytest.mark.parametrize("preset", ["crnn-mv3", "ppocrv5-mobile"])
def test_bench_loader_json_on_a_preset(preset: str, tiny_data: dict, tmp_path: Path) -> None:
    find_engine()
    cfg = tmp_path / f"{preset}.yml"
    build(preset, tiny_data["train"], tiny_data["val"], tiny_data["dict"], cfg, device="cpu",
          batch_size=4)
    proc = _cli("bench", "loader", "--config", str(cfg), "--workers", "1", "--seconds", "1", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["workers"] == 1
    assert out["samples_per_s"] > 0 and out["per_worker"] == pytest.approx(out["samples_per_s"], rel=0.01)
    names = [s["stage"] for s in out["stages"]]
    assert names[:1] == ["read"] and "decode" in names and names[-1] == "collate"
    assert sum(s["share"] for s in out["stages"]) == pytest.approx(1.0, abs=0.01)
    if preset == "ppocrv5-mobile":  # the multi-scale dataset and its augmentations
        assert out["dataset"] == "MultiScaleDataSet"
        assert {"RecAug", "MultiScaleResize"} <= set(names)
    assert {r["instance"] for r in out["instances"]} >= {"ml.g5.xlarge", "ml.g4dn.xlarge"}


def test_bench_loader_bad_config_is_a_user_error(tmp_path: Path) -> None:
    proc = _cli("bench", "loader", "--config", str(tmp_path / "nope.yml"))
    assert proc.returncode == 2
    assert "not found" in proc.stderr
    bad = tmp_path / "bad.yml"
    bad.write_text("Global: {}\n", encoding="utf-8")
    proc = _cli("bench", "loader", "--config", str(bad))
    assert proc.returncode == 2 and "no Train section" in proc.stderr


def test_engine_failure_names_the_cause(tiny_data: dict, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yml"
    build("crnn-mv3", tiny_data["train"], tiny_data["val"], tiny_data["dict"], cfg, device="cpu",
          batch_size=4)
    text = cfg.read_text(encoding="utf-8").replace("RecResizeImg", "NoSuchOp")
    cfg.write_text(text, encoding="utf-8")
    proc = _cli("bench", "loader", "--config", str(cfg), "--workers", "0", "--seconds", "1")
    assert proc.returncode == 4, proc.stderr[-2000:]
    assert "data pipeline failed" in proc.stderr and "NoSuchOp" in proc.stderr
