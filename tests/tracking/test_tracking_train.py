"""Training runs tracked in a real MLflow server and in TensorBoard event files: the real engine
on the CPU, a few steps; the run read back through MLflow's client and TensorBoard's own
EventAccumulator. A stopped run resumed is the same MLflow run; a dead server never stops
training, and the problem log says what was not logged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

from rectrain.runlog.records import read_metrics
from rectrain.tracking import TrackingOptions
from rectrain.training.runner import start_recognition_training

from .mlflow_server import free_port


def _history(client: Any, run_id: str, key: str) -> List[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def _artifacts(client: Any, run_id: str, path: str = "") -> List[str]:
    out: List[str] = []
    for item in client.list_artifacts(run_id, path or None):
        out += _artifacts(client, run_id, item.path) if item.is_dir else [item.path]
    return out


def _scalars(logdir: Path) -> Dict[str, List[int]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return {tag: [e.step for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.mark.slow
def test_mlflow_and_tensorboard_follow_a_stopped_then_resumed_run(
        engine: Any, make_config: Callable[..., Path], tmp_path: Path, mlflow_server: Any) -> None:
    pytest.importorskip("tensorboardX")
    config = make_config(epochs=3)  # 4 steps an epoch, eval every epoch
    run = tmp_path / "run"
    options = TrackingOptions(mlflow_uri=mlflow_server.uri, experiment="tiny-tests")

    first = start_recognition_training(config, run, device="cpu", display="none", max_seconds=0.5,
                                       tracking=options)
    assert first.status == "stopped" and first.global_step == 4
    state = json.loads((run / "run-state.json").read_text(encoding="utf-8"))
    run_id = state["tracking"]["mlflow"]["run_id"]
    client = mlflow_server.client()
    assert client.get_run(run_id).info.status == "FINISHED"

    second = start_recognition_training(config, run, device="cpu", display="none", resume=True,
                                        tracking=options)
    assert second.status == "completed" and second.global_step == 12
    state = json.loads((run / "run-state.json").read_text(encoding="utf-8"))
    assert state["tracking"]["mlflow"]["run_id"] == run_id  # the same MLflow run continued
    assert len(client.search_runs([client.get_experiment_by_name("tiny-tests").experiment_id])) == 1

    mrun = client.get_run(run_id)
    assert mrun.info.status == "FINISHED"
    params, tags = mrun.data.params, mrun.data.tags
    assert params["algorithm"] == "CRNN" and params["epochs"] == "3" and params["lr"] == "0.001"
    assert params["batch_size"] == "4" and params["image_shape"] == "[3, 32, 100]"
    assert params["device"] == "cpu"
    assert tags["rectrain.engine_version"] == engine.version and tags["device"] == "cpu"
    assert len(tags["dataset.sha256"]) == 64 and tags["rectrain.resumed_at_step"] == "4"
    # every train step and every eval, with its step, across both attempts
    train_steps = [r["global_step"] for r in read_metrics(run / "metrics.jsonl") if r["type"] == "train"]
    assert set(_history(client, run_id, "train/loss")) == set(train_steps) == set(range(1, 13))
    assert set(_history(client, run_id, "eval/acc")) == {4, 8, 12}
    assert {"train/lr", "train/norm_edit_dis", "eval/norm_edit_dis"} <= set(mrun.data.metrics)
    artifacts = _artifacts(client, run_id)
    assert {"config/cfg.yml", "curves.png", "metrics.jsonl"} <= set(artifacts), artifacts

    # TensorBoard: the same metrics, read with TensorBoard's own reader
    scalars = _scalars(run / "tensorboard")
    assert sorted(set(scalars["train/loss"])) == list(range(1, 13))
    assert sorted(set(scalars["eval/acc"])) == [4, 8, 12]
    assert not (run / "problem-log.md").exists() or "tracking" not in (
        run / "problem-log.md").read_text(encoding="utf-8")

    # the exported model is attached to the same MLflow run
    from rectrain.model.export import export_model
    from rectrain.tracking import attach_to_run

    model = export_model(str(run), out_dir=str(tmp_path / "model"))
    assert attach_to_run(run, [model], subdir="model")
    assert "model/model.json" in _artifacts(client, run_id)


@pytest.mark.slow
def test_a_dead_mlflow_server_never_stops_training(engine: Any, make_config: Callable[..., Path],
                                                   tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    run = tmp_path / "run"
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = start_recognition_training(
        make_config(epochs=1), run, device="cpu", display="none",
        tracking=TrackingOptions(mlflow_uri=dead, tensorboard=False))
    assert result.status == "completed" and result.global_step == 4
    problems = (run / "problem-log.md").read_text(encoding="utf-8")
    assert "tracking-incomplete" in problems and dead in problems
    assert "metric values of steps 1-4 not logged" in problems
    assert "could not start" in problems
    assert not (run / "tensorboard").exists()
