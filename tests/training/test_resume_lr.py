"""The learning rate after a resume equals the uninterrupted run's at every step: the same
config run straight through, and interrupted (SIGTERM), resumed with --max-steps (a stop, not
a new schedule), and resumed again to the end. Cosine without warmup is the strict case:
Paddle's CosineAnnealingDecay is recursive in its last value, so any change of the schedule
between segments bends the rest of the curve. Real engine on the CPU, no S3."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

import pytest

from rectrain.runlog.plots import continuous
from rectrain.runlog.records import read_metrics

EPOCHS = 6  # x 4 steps = 24 global steps


def _argv(config: Path, run: Path, *extra: str) -> List[str]:
    return [sys.executable, "-m", "rectrain", "train", "--config", str(config), "--run-dir", str(run),
            "--device", "cpu", "--sub-epochs", "2", "--display", "json", *extra]


def _run(config: Path, run: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(_argv(config, run, *extra), env=dict(os.environ), capture_output=True, text=True,
                          timeout=600)


def _lrs(run: Path) -> Dict[int, float]:
    return {r["global_step"]: r["lr"] for r in continuous(read_metrics(run / "metrics.jsonl"))
            if r["type"] == "train"}


@pytest.mark.slow
def test_lr_after_resume_equals_the_uninterrupted_run(engine, make_config: Callable[..., Path],
                                                       tmp_path: Path) -> None:
    config = make_config(epochs=EPOCHS, warmup_epoch=0, save_epoch_step=100, eval_step=1000)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    proc = _run(config, straight)
    assert proc.returncode == 0, proc.stderr[-3000:]

    # interrupted after step 6 (the newest checkpoint is at a sub-epoch end before it)
    child = subprocess.Popen(_argv(config, resumed), env=dict(os.environ), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert child.poll() is None, child.stderr.read().decode()[-2000:] if child.stderr else ""
        steps = [r["global_step"] for r in read_metrics(resumed / "metrics.jsonl") if r["type"] == "train"] \
            if (resumed / "metrics.jsonl").exists() else []
        if steps and steps[-1] >= 6:
            break
        time.sleep(0.1)
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=120) == 75
    # resumed with --max-steps: stops there, keeps the run's schedule
    proc = _run(config, resumed, "--resume", "--max-steps", "14")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "stopping at step 14" in proc.stderr
    # and to the end
    proc = _run(config, resumed, "--resume")
    assert proc.returncode == 0, proc.stderr[-3000:]

    a, b = _lrs(straight), _lrs(resumed)
    assert sorted(a) == sorted(b) == list(range(1, EPOCHS * 4 + 1))
    for step in sorted(a):
        assert b[step] == pytest.approx(a[step], abs=2e-6), (step, a[step], b[step])
    assert a[EPOCHS * 4] < a[1]  # a real schedule, not a constant
    records = read_metrics(resumed / "metrics.jsonl")
    assert len([r for r in records if r["type"] == "resume"]) == 2
    state = json.loads((resumed / "run-state.json").read_text(encoding="utf-8"))
    assert state["status"] == "completed" and state["plan_max_steps"] is None
    # past the end: says so, starts nothing
    proc = _run(config, resumed, "--resume", "--max-steps", "10")
    assert proc.returncode == 0 and "nothing is trained" in proc.stderr
