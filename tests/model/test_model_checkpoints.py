"""Finding the checkpoint to export (no engine needed: the files are stand-ins)."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pytest

from rectrain.errors import UserError
from rectrain.model.export import _checkpoint_state, _warn_if_run_has_a_better_best, resolve_checkpoint

CONFIG = {"Global": {"save_model_dir": "./output/rec"}, "Metric": {"main_indicator": "acc"}}


def _ckpt(prefix: Path, acc: float, epoch: int = 3, step: int = 30) -> Path:
    prefix.parent.mkdir(parents=True, exist_ok=True)
    prefix.with_name(prefix.name + ".pdparams").write_bytes(b"stand-in")
    with open(prefix.with_name(prefix.name + ".states"), "wb") as fh:
        pickle.dump({"best_model_dict": {"acc": acc, "norm_edit_dis": 0.5, "best_epoch": epoch},
                     "epoch": epoch, "global_step": step}, fh, protocol=2)
    return prefix


def test_names_in_the_run_and_the_layouts_rectrain_train_writes(tmp_path):
    ck = tmp_path / "checkpoints"
    _ckpt(ck / "best_accuracy", 0.5)
    _ckpt(ck / "iter_epoch_2", 0.4)
    _ckpt(ck / "best_of_run" / "best_of_run", 0.9)
    assert resolve_checkpoint("best_accuracy", tmp_path, CONFIG) == (ck / "best_accuracy").resolve()
    assert resolve_checkpoint("iter_epoch_2", tmp_path, CONFIG) == (ck / "iter_epoch_2").resolve()
    assert resolve_checkpoint("best_of_run", tmp_path, CONFIG) == (
        ck / "best_of_run" / "best_of_run").resolve()
    with pytest.raises(UserError) as err:
        resolve_checkpoint("latest", tmp_path, CONFIG)
    message = str(err.value)
    assert "best_accuracy" in message and "best_of_run" in message and "iter_epoch_2" in message


def test_named_snapshots_of_rectrain_train(tmp_path):
    """`rectrain train` keeps snapshots/<name>.json pointing at an immutable folder: the name
    resolves to that folder's copy, not to the engine's file (overwritten in place)."""
    from rectrain.checkpoints.local import read_pointer, snapshot

    ck = tmp_path / "checkpoints"
    _ckpt(ck / "latest", 0.3, epoch=3, step=30)
    (ck / "latest.pdopt").write_bytes(b"optimizer stand-in")
    snapshot(ck, "latest", ck / "snapshots")
    folder = read_pointer(ck / "snapshots", "latest")[0]
    assert resolve_checkpoint("latest", tmp_path, CONFIG) == (folder / "latest").resolve()


def test_save_model_dir_relative_to_the_run(tmp_path):
    latest = _ckpt(tmp_path / "output" / "rec" / "latest", 0.1)
    assert resolve_checkpoint("latest", tmp_path, CONFIG) == latest.resolve()


def test_states_give_epoch_step_and_metrics(tmp_path):
    prefix = _ckpt(tmp_path / "best_accuracy", 0.75, epoch=7, step=700)
    state = _checkpoint_state(prefix)
    assert (state["epoch"], state["global_step"]) == (7, 700)
    assert state["metrics"]["acc"] == 0.75
    assert _checkpoint_state(tmp_path / "missing") == {}


def test_warns_when_best_accuracy_is_worse_than_the_runs_best(tmp_path, caplog):
    ck = tmp_path / "checkpoints"
    best = _ckpt(ck / "best_accuracy", 0.5)
    _ckpt(ck / "best_of_run" / "best_of_run", 0.9)
    logger = logging.getLogger("rectrain")
    logger.addHandler(caplog.handler)
    try:
        _warn_if_run_has_a_better_best(best, tmp_path, CONFIG)
        assert "--checkpoint best_of_run" in caplog.text
        caplog.clear()
        _ckpt(ck / "best_of_run" / "best_of_run", 0.4)
        _warn_if_run_has_a_better_best(best, tmp_path, CONFIG)
        assert caplog.text == ""
    finally:
        logger.removeHandler(caplog.handler)
