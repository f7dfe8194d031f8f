"""Sub-epoch planning (bounded lost work) and the engine command, as pure data."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rectrain.engine import Engine
from rectrain.training.command import build_train_command
from rectrain.training.plan import make_plan


def _config(tmp_path: Path, n: int = 1000, batch: int = 10, lr: dict = None) -> dict:
    labels = tmp_path / "train.txt"
    labels.write_text("".join(f"img{i}.png\tx\n" for i in range(n)), encoding="utf-8")
    return {"Global": {"epoch_num": 10, "save_epoch_step": 3, "eval_batch_step": [0, 500]},
            "Optimizer": {"lr": lr or {"name": "Cosine", "learning_rate": 0.001, "warmup_epoch": 2}},
            "Train": {"dataset": {"name": "SimpleDataSet", "label_file_list": [str(labels)]},
                      "loader": {"batch_size_per_card": batch, "drop_last": True}}}


def test_no_split_when_an_epoch_is_short(tmp_path: Path) -> None:
    plan = make_plan(_config(tmp_path, n=1000), device="gpu", checkpoint_every_min=30)
    assert plan.sub_epochs == 1 and plan.overrides == {}
    assert plan.train_samples == 1000 and plan.steps_per_epoch == 100


def test_long_epochs_are_split_and_epoch_counts_scaled(tmp_path: Path) -> None:
    # 1000 samples at the CPU guess of 15 samples/s: about 67 s per epoch; every 0.5 min -> K=3
    plan = make_plan(_config(tmp_path, n=1000), device="cpu", checkpoint_every_min=0.5)
    assert plan.sub_epochs == 3
    ov = plan.overrides
    assert ov["Global.epoch_num"] == 30
    assert ov["Train.dataset.ratio_list"] == [pytest.approx(1 / 3)]
    assert ov["Global.save_epoch_step"] == 9
    assert ov["Optimizer.lr.warmup_epoch"] == 6
    assert "Global.eval_batch_step" not in ov  # step based: unchanged


def test_measured_speed_and_explicit_k(tmp_path: Path) -> None:
    cfg = _config(tmp_path, n=1000, lr={"name": "Piecewise", "decay_epochs": [4, 8],
                                        "values": [0.1, 0.01, 0.001]})
    plan = make_plan(cfg, device="gpu", checkpoint_every_min=1, measured_ips=5.0)  # 200 s/epoch
    assert plan.sub_epochs == 4
    assert plan.overrides["Optimizer.lr.decay_epochs"] == [16, 32]
    assert make_plan(cfg, sub_epochs=2).sub_epochs == 2
    # never more sub-epochs than batches in an epoch
    assert make_plan(_config(tmp_path, n=30, batch=10), sub_epochs=50).sub_epochs == 3


def test_max_steps_runs_one_short_engine_epoch(tmp_path: Path) -> None:
    plan = make_plan(_config(tmp_path, n=1000), max_steps=20)
    assert plan.overrides["Global.epoch_num"] == 1
    assert plan.overrides["Train.dataset.ratio_list"] == [pytest.approx(0.2)]
    assert plan.overrides["Global.eval_batch_step"] == [0, 20]
    plan = make_plan(_config(tmp_path, n=1000), max_steps=250)
    assert plan.overrides["Global.epoch_num"] == 3


def test_lmdb_dataset_is_not_split(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    cfg["Train"]["dataset"] = {"name": "LMDBDataSet", "data_dir": "x"}
    plan = make_plan(cfg, device="cpu", checkpoint_every_min=0.01)
    assert plan.sub_epochs == 1 and plan.train_samples is None


def test_train_command_is_pure_data(tmp_path: Path) -> None:
    engine = Engine(root=tmp_path, kind="checkout", version="x", python="/usr/bin/python3")
    argv, env = build_train_command(engine, "cfg.yml", save_model_dir="/run/ck", device="cpu",
                                    resume_from="/run/ck/resume/latest",
                                    plan_overrides={"Global.epoch_num": 20,
                                                    "Train.dataset.ratio_list": [0.5]})
    assert argv[:3] == ["/usr/bin/python3", "-u", str(tmp_path / "tools" / "train.py")]
    opts = argv[argv.index("-o") + 1:]
    assert "Global.save_model_dir=/run/ck" in opts and "Global.use_gpu=false" in opts
    assert "Global.checkpoints=/run/ck/resume/latest" in opts
    assert "Train.dataset.ratio_list=[0.5]" in opts
    assert yaml.safe_load(opts[-1].split("=", 1)[1]) == [0.5]
    assert env["CUDA_VISIBLE_DEVICES"] == "" and env["PYTHONUNBUFFERED"] == "1"
    argv, _ = build_train_command(engine, "cfg.yml", save_model_dir="/ck", device="gpu", gpus=[0, 1])
    assert "paddle.distributed.launch" in argv and "0,1" in argv
