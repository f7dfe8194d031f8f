"""The runner on the real engine (CPU, tiny data): streamed metrics, snapshots, refusal rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest

from rectrain.checkpoints.local import read_pointer
from rectrain.errors import EnvironmentProblem, UserError
from rectrain.runlog.records import read_metrics
from rectrain.training.runner import start_recognition_training


def test_gpu_is_required_unless_cpu_is_asked(make_config: Callable[..., Path], tmp_path: Path) -> None:
    from rectrain.machine.gpu import query_gpus

    if query_gpus().gpus:
        pytest.skip("this machine has a GPU")
    with pytest.raises(EnvironmentProblem, match="--device cpu"):
        start_recognition_training(make_config(), tmp_path / "run", device="gpu", display="none")
    assert not (tmp_path / "run" / "train.log").exists()  # refused before anything ran


@pytest.mark.slow
def test_train_on_cpu_streams_metrics_and_keeps_checkpoints(engine, make_config: Callable[..., Path],
                                                            tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = start_recognition_training(make_config(epochs=2), run, device="cpu", display="none")
    assert result.status == "completed" and result.exit_code == 0
    assert result.global_step == 8 and result.epoch == 2
    records = read_metrics(run / "metrics.jsonl")
    train = [r for r in records if r["type"] == "train"]
    assert [r["global_step"] for r in train] == list(range(1, 9))
    assert all(isinstance(r["loss"], float) and isinstance(r["lr"], float) for r in train)
    evals = [r for r in records if r["type"] == "eval"]
    assert [r["global_step"] for r in evals] == [4, 8] and all("acc" in r for r in evals)
    log = (run / "train.log").read_text(encoding="utf-8")
    assert "epoch: [2/2], global_step: 8" in log  # the engine's full output is kept
    assert (run / "config.yml").is_file() and (run / "curves.png").stat().st_size > 1000
    snap = read_pointer(run / "checkpoints" / "snapshots", "latest")[0]
    assert snap.name.startswith("s00000008-latest-")  # an immutable, step-named folder
    marker = json.loads((snap / "_COMPLETE.json").read_text(encoding="utf-8"))
    assert marker["global_step"] == 8 and set(marker["files"]) == {
        "latest.pdparams", "latest.pdopt", "latest.states"}
    best = read_pointer(run / "checkpoints" / "snapshots", "best_of_run")[0]
    assert result.best_checkpoint == best / "best_of_run"
    assert result.latest_checkpoint == snap / "latest"
    assert Path(str(result.best_checkpoint) + ".pdparams").is_file()
    state = json.loads((run / "run-state.json").read_text(encoding="utf-8"))
    assert state["status"] == "completed" and state["global_step"] == 8
    # a finished run folder is not silently reused
    with pytest.raises(UserError, match="--resume"):
        start_recognition_training(make_config(epochs=2), run, device="cpu", display="none")


@pytest.mark.slow
def test_max_steps_stops_cleanly_with_checkpoints(engine, make_config: Callable[..., Path],
                                                  tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = start_recognition_training(make_config(epochs=50), run, device="cpu", display="none",
                                        max_steps=3)
    assert result.status == "completed" and result.global_step == 3
    names = {p.name for p in (run / "checkpoints" / "snapshots").iterdir()}
    assert {"latest.json", "best_accuracy.json", "best_of_run.json"} <= names
    # without S3, the two newest folders of each name are kept (SageMaker syncs the folder)
    assert sum(n.split("-")[1:2] == ["latest"] for n in names) <= 2


@pytest.mark.slow
def test_sub_epochs_keep_the_lr_schedule_and_step_count(engine, make_config: Callable[..., Path],
                                                        tmp_path: Path) -> None:
    """K=2 sub-epochs: `latest` twice per epoch, same steps and the same lr at every step."""
    config = make_config(epochs=3, warmup_epoch=1, eval_step=100)
    runs = {}
    for k in (1, 2):
        run = tmp_path / f"k{k}"
        start_recognition_training(config, run, device="cpu", display="none", sub_epochs=k)
        runs[k] = read_metrics(run / "metrics.jsonl")
    train = {k: [(r["global_step"], r["lr"], r["epoch"]) for r in recs if r["type"] == "train"]
             for k, recs in runs.items()}
    assert [s for s, _, _ in train[2]] == [s for s, _, _ in train[1]] == list(range(1, 13))
    assert [lr for _, lr, _ in train[2]] == pytest.approx([lr for _, lr, _ in train[1]], abs=1e-9)
    assert [e for _, _, e in train[2]] == [e for _, _, e in train[1]]  # real epochs reported
    saves = [r["global_step"] for r in runs[2] if r["type"] == "save" and r["name"] == "latest"]
    assert saves == [2, 4, 6, 8, 10, 12]


@pytest.mark.slow
def test_max_seconds_stops_at_the_next_checkpoint(engine, make_config: Callable[..., Path],
                                                  tmp_path: Path) -> None:
    run, ck = tmp_path / "run", tmp_path / "opt-ml-checkpoints"
    result = start_recognition_training(make_config(epochs=200), run, device="cpu", display="none",
                                        max_seconds=1, checkpoint_dir=ck)
    assert result.status == "stopped" and result.exit_code == 0
    latest = [r for r in read_metrics(run / "metrics.jsonl") if r["type"] == "save" and r["name"] == "latest"]
    assert latest and result.global_step - latest[-1]["global_step"] <= 4  # stopped right after it
    assert result.global_step < 200 * 4
    # checkpoints outside the run folder (SageMaker) keep a copy of the run's history
    assert (ck / "run" / "metrics.jsonl").is_file() and (ck / "run" / "run-state.json").is_file()
