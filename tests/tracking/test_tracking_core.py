"""The run tracker without the engine: metric names from metrics.jsonl records, options from
the environment, TensorBoard events written and read back with TensorBoard's own reader, a
resume purging the redone steps, and parameters from a config and its base."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rectrain.tracking import RunTracking, TrackingOptions, record_metrics
from rectrain.tracking.params import changed_fields, run_params


def test_record_metrics_names_and_steps() -> None:
    step, values = record_metrics({"type": "train", "global_step": 7, "epoch": 1, "loss": 2.5, "acc": 0.25,
                                   "lr": 0.001, "ips": 12.0, "eta_s": 30, "unix_time": 1.0, "segment": 0})
    assert step == 7
    assert values == {"train/loss": 2.5, "train/acc": 0.25, "train/lr": 0.001, "train/ips": 12.0}
    step, values = record_metrics({"type": "eval", "global_step": 8, "acc": 0.5, "norm_edit_dis": 0.7,
                                   "best_acc": 0.5, "saved_best": True, "best_epoch": 2})
    assert step == 8 and values == {"eval/acc": 0.5, "eval/norm_edit_dis": 0.7, "eval/best_acc": 0.5}
    assert record_metrics({"type": "save", "global_step": 8, "name": "latest"}) == (None, {})
    assert record_metrics({"type": "train", "global_step": 9, "loss": "nan"})[1] == {}


def test_options_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RECTRAIN_TENSORBOARD_DIR", raising=False)
    assert TrackingOptions().resolved_mlflow_uri() is None
    assert TrackingOptions().resolved_tensorboard_dir(tmp_path) == tmp_path / "tensorboard"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "thai")
    assert TrackingOptions().resolved_mlflow_uri() == "http://127.0.0.1:5000"
    assert TrackingOptions(mlflow=False).resolved_mlflow_uri() is None
    assert TrackingOptions().resolved_experiment() == "thai"
    assert TrackingOptions(tensorboard=False).resolved_tensorboard_dir(tmp_path) is None


def _scalars(logdir: Path) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return {tag: [(e.step, round(e.value, 4)) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_events_and_a_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tensorboardX")
    pytest.importorskip("tensorboard")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run = tmp_path / "run"
    first = RunTracking.begin(run, TrackingOptions(), {}, info={"device": "cpu"})
    assert first.active == ["TensorBoard"]
    for step in range(1, 7):  # interrupted after step 6; the last checkpoint is at step 4
        first.record({"type": "train", "global_step": step, "loss": 10.0 - step, "unix_time": 1000.0 + step})
    first.record({"type": "eval", "global_step": 4, "acc": 0.25})
    assert first.finish("interrupted") == []
    second = RunTracking.begin(run, TrackingOptions(), first.state, info={"resume_step": 4})
    for step in range(5, 9):
        second.record({"type": "train", "global_step": step, "loss": 20.0 - step, "unix_time": 2000.0 + step})
    second.finish("completed")
    scalars = _scalars(run / "tensorboard")
    # steps 5-6 of the first attempt were redone: only the second attempt's values remain
    assert scalars["train/loss"] == [(1, 9.0), (2, 8.0), (3, 7.0), (4, 6.0), (5, 15.0), (6, 14.0),
                                     (7, 13.0), (8, 12.0)]
    assert scalars["eval/acc"] == [(4, 0.25)]
    assert not (run / "problem-log.md").exists()


def test_no_backend_no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tracking = RunTracking.begin(tmp_path / "run", TrackingOptions(tensorboard=False), {})
    tracking.record({"type": "train", "global_step": 1, "loss": 1.0})
    assert tracking.active == [] and tracking.finish("completed") == [] and tracking.state == {}
    other_host = RunTracking.begin(tmp_path / "run2", None, {}, enabled=False)
    assert other_host.active == []


def test_params_from_the_config_and_its_base(tmp_path: Path) -> None:
    base = {"Global": {"epoch_num": 100, "character_dict_path": "ppocr/utils/en_dict.txt"},
            "Optimizer": {"name": "Adam", "lr": {"name": "Cosine", "learning_rate": 0.001}},
            "Architecture": {"algorithm": "SVTR_LCNet"},
            "Train": {"loader": {"batch_size_per_card": 128},
                      "dataset": {"transforms": [{"RecResizeImg": {"image_shape": [3, 48, 320]}}]}}}
    cfg = yaml.safe_load(yaml.safe_dump(base))
    cfg["Global"]["epoch_num"] = 20
    cfg["Global"]["character_dict_path"] = "/data/th_dict.txt"
    cfg["Train"]["loader"]["batch_size_per_card"] = 64
    path = tmp_path / "run.yml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    (tmp_path / "run.base.yml").write_text(yaml.safe_dump(base), encoding="utf-8")
    assert changed_fields(cfg, path) == {"Global.character_dict_path": "/data/th_dict.txt",
                                         "Global.epoch_num": 20, "Train.loader.batch_size_per_card": 64}
    params = run_params(cfg, path, {"device": "gpu", "sub_epochs": 2})
    assert params["epochs"] == "20" and params["batch_size"] == "64" and params["lr"] == "0.001"
    assert params["dictionary"] == "th_dict.txt" and params["image_shape"] == "[3, 48, 320]"
    assert params["algorithm"] == "SVTR_LCNet" and params["device"] == "gpu" and params["sub_epochs"] == "2"
    assert params["cfg.Global.epoch_num"] == "20" and "cfg.Optimizer.name" not in params


def test_without_the_tracking_packages_training_is_told_what_is_not_logged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import rectrain.tracking.core as core

    monkeypatch.setattr(core, "mlflow_available", lambda: False)
    monkeypatch.setattr(core, "tensorboard_available", lambda: False)
    run = tmp_path / "run"
    tracking = RunTracking.begin(run, TrackingOptions(mlflow_uri="http://127.0.0.1:5000"), {})
    assert tracking.active == []
    assert "tensorboardX is not installed" in caplog.text
    tracking.record({"type": "train", "global_step": 1, "loss": 1.0})
    problems = tracking.finish("completed")
    assert len(problems) == 1 and "mlflow package is not installed" in problems[0]
    log = (run / "problem-log.md").read_text(encoding="utf-8")
    assert "tracking-incomplete" in log and "rectrain[tracking]" in log and "http://127.0.0.1:5000" in log
