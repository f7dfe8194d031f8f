"""GPU runs (skipped cleanly without an NVIDIA GPU and a CUDA build of Paddle)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest


def _gpu_ready() -> str:
    from rectrain.machine.gpu import paddle_build, query_gpus

    if not query_gpus().gpus:
        return "no NVIDIA GPU visible"
    if not paddle_build().cuda_build:
        return "Paddle is not a CUDA build"
    return ""


@pytest.mark.gpu
@pytest.mark.slow
def test_train_on_one_gpu(engine, make_config: Callable[..., Path], tmp_path: Path) -> None:
    reason = _gpu_ready()
    if reason:
        pytest.skip(reason)
    from rectrain.runlog.records import read_metrics
    from rectrain.training.runner import start_recognition_training

    result = start_recognition_training(make_config(epochs=2), tmp_path / "run", device="gpu",
                                        gpus=[0], display="none")
    assert result.status == "completed" and result.global_step == 8
    assert "Place(gpu:0)" in (tmp_path / "run" / "train.log").read_text(encoding="utf-8")
    train = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["type"] == "train"]
    assert len(train) == 8
