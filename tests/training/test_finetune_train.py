"""`train` for fine-tuning: a head that does not fit the dictionary is refused before the engine
starts; `--early-stop N`; the demo's fixed step count (stop_at_step)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import yaml

from rectrain.cli.main import main
from rectrain.errors import EXIT_USER_ERROR, ConfigError, UserError
from rectrain.runlog.records import read_metrics
from rectrain.training.early_stop import EarlyStop
from rectrain.training.runner import start_recognition_training


def _with_pretrained(config: Path, classes: int, dict_path=None) -> Path:
    cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
    weights = config.parent / "w.pdparams"
    with open(weights, "wb") as fh:
        pickle.dump({"head.fc.weight": np.zeros((96, classes), "float32"),
                     "head.fc.bias": np.zeros(classes, "float32")}, fh, protocol=4)
    cfg["Global"]["pretrained_model"] = str(weights.with_suffix(""))  # the engine's prefix form
    if dict_path is not None:
        cfg["Global"]["character_dict_path"] = str(dict_path)
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return config


def test_head_dictionary_mismatch_is_refused_before_the_engine_starts(
        engine, make_config: Callable[..., Path], tiny_data: dict, tmp_path: Path, capsys) -> None:
    n = len(tiny_data["dict"].read_text(encoding="utf-8").splitlines())
    config = _with_pretrained(make_config(), n + 3)
    run = tmp_path / "run"
    with pytest.raises(ConfigError) as err:
        start_recognition_training(config, run, device="cpu", display="none")
    msg = str(err.value)
    assert f"has {n + 3} outputs" in msg and f"gives {n + 1}" in msg and "--base-dict" in msg
    assert not (run / "train.log").exists()  # the engine never ran
    rc = main(["train", "--config", str(config), "--run-dir", str(run), "--device", "cpu"])
    assert rc == EXIT_USER_ERROR and "silently re-initialize" in capsys.readouterr().err


def test_stale_thai_dictionary_with_weights_is_refused(engine, make_config: Callable[..., Path],
                                                       tmp_path: Path) -> None:
    stale = Path(__file__).resolve().parents[2] / ".." / "shared" / "paddleocr-configs" / \
        "ppocrv5_th_dict.stale-9b0493f.txt"
    if not stale.is_file():
        pytest.skip("../shared/paddleocr-configs is absent")
    config = _with_pretrained(make_config(), 523 + 1, dict_path=stale)  # it fits the stale file
    with pytest.raises(ConfigError, match="stale revision"):
        start_recognition_training(config, tmp_path / "run", device="cpu", display="none")


def test_early_stop_counts_evaluations_without_a_better_metric() -> None:
    es = EarlyStop(2, "acc")
    feed = [{"type": "train", "acc": 0.9}, {"type": "eval", "acc": 0.1},
            {"type": "eval", "acc": 0.3}, {"type": "eval", "acc": 0.3},  # a tie is no progress
            {"type": "eval", "acc": 0.2}]
    assert [es.feed(r) for r in feed] == [False, False, False, False, True]
    assert es.best == 0.3 and "0.3" in es.message()
    resumed = EarlyStop(1, "acc", best=0.5)  # a resumed run keeps the best of the run
    assert resumed.feed({"type": "eval", "acc": 0.4}) is True
    with pytest.raises(UserError, match="at least 1"):
        EarlyStop(0)


@pytest.mark.slow
def test_early_stop_and_fixed_step_count_on_the_engine(engine, make_config: Callable[..., Path],
                                                       tmp_path: Path) -> None:
    # evaluated every step; stops 2 evaluations after the last new best, best model kept
    run = tmp_path / "es"
    result = start_recognition_training(make_config(epochs=30, eval_step=1), run, device="cpu",
                                        display="none", early_stop=2)
    assert result.status == "stopped" and result.exit_code == 0
    evals = [r["acc"] for r in read_metrics(run / "metrics.jsonl") if r["type"] == "eval"]
    best_at = max(i for i, v in enumerate(evals) if v > max(evals[:i], default=-1.0))
    assert len(evals) - 1 - best_at == 2 and result.global_step < 30 * 4
    assert result.best_checkpoint is not None
    # stop_at_step: after the checkpoint of that step, whatever the schedule (4 steps per epoch)
    run = tmp_path / "fixed"
    result = start_recognition_training(make_config("f.yml", epochs=50), run, device="cpu",
                                        display="none", stop_at_step=8)
    assert result.status == "stopped" and result.global_step == 8
    saves = [r["global_step"] for r in read_metrics(run / "metrics.jsonl")
             if r["type"] == "save" and r["name"] == "latest"]
    assert saves[-1] == 8
