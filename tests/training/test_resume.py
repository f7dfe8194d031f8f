"""Interrupt with SIGTERM mid-run (twice, the second time on a "new machine" that only has
S3), resume, finish: the global step and the learning rate continue, S3 holds complete
checkpoints only, the metrics history is continuous. Real engine, real SeaweedFS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

from rectrain.checkpoints.remote import list_remote
from rectrain.fsutil import sha256_file
from rectrain.runlog.plots import continuous
from rectrain.runlog.records import read_metrics
from rectrain.storage.s3 import S3Uri

EPOCHS = 10  # x 4 steps = 40 global steps
STEPS = EPOCHS * 4


def _train(config: Path, run_dir: Path, s3: str, env: Dict[str, str], *, resume: bool) -> subprocess.Popen:
    argv = [sys.executable, "-m", "rectrain", "train", "--config", str(config), "--run-dir", str(run_dir),
            "--device", "cpu", "--sub-epochs", "2", "--checkpoint-s3", s3, "--display", "json"]
    if resume:
        argv.append("--resume")
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for_step(proc: subprocess.Popen, metrics: Path, step: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"training ended early: {proc.stderr.read().decode()[-2000:]}"
        steps = [r["global_step"] for r in read_metrics(metrics) if r["type"] == "train"]
        if steps and steps[-1] >= step:
            return steps[-1]
        time.sleep(0.1)
    raise AssertionError(f"no step {step} within {timeout} s")


def _interrupt(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=120)


def _assert_s3_complete_only(s3: Any, s3_client: Any, bucket: str, prefix: str, tmp: Path) -> List[Any]:
    """Every checkpoint S3 lists has its marker and every file the marker names, checksums equal."""
    infos = list_remote(s3, S3Uri.parse(f"s3://{bucket}/{prefix}"))
    for info in infos:
        for fname, meta in info.files.items():
            key = f"{info.location[len(f's3://{bucket}/'):]}/{fname}"  # the folder it names
            target = tmp / "check" / info.name / fname
            target.parent.mkdir(parents=True, exist_ok=True)
            s3_client.download_file(bucket, key, str(target))
            assert sha256_file(target) == meta["sha256"], key
    return infos


@pytest.mark.slow
def test_sigterm_resume_twice_then_finish(engine, make_config: Callable[..., Path], tmp_path: Path,
                                          s3_server: Any, s3_client: Any, s3_bucket: str) -> None:
    config = make_config(epochs=EPOCHS, warmup_epoch=1, save_epoch_step=10, eval_step=8)
    s3 = f"s3://{s3_bucket}/runs/tiny"
    env = dict(os.environ, **s3_server.env)
    machine_a, machine_b = tmp_path / "a", tmp_path / "b"

    # 1) first machine: interrupted mid-run
    proc = _train(config, machine_a, s3, env, resume=False)
    stopped_at = _wait_for_step(proc, machine_a / "metrics.jsonl", 9)
    assert _interrupt(proc) == 75
    state = json.loads((machine_a / "run-state.json").read_text(encoding="utf-8"))
    assert state["status"] == "interrupted" and state["sub_epochs"] == 2
    infos = _assert_s3_complete_only(s3_server.service(), s3_client, s3_bucket, "runs/tiny", tmp_path)
    latest = next(i for i in infos if i.name == "latest")
    assert 0 < latest.global_step <= stopped_at + 2  # (a save may land while stopping)

    # 2) a new machine with nothing but S3: resumes from S3, interrupted again
    proc = _train(config, machine_b, s3, env, resume=True)
    _wait_for_step(proc, machine_b / "metrics.jsonl", latest.global_step + 10)
    assert _interrupt(proc) == 75

    # 3) resume again on the same machine and finish
    proc = _train(config, machine_b, s3, env, resume=True)
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()[-3000:]

    records = read_metrics(machine_b / "metrics.jsonl")  # history restored from S3, then appended
    resumes = [r for r in records if r["type"] == "resume"]
    assert len(resumes) == 2 and resumes[0]["global_step"] == latest.global_step
    # the global step continues after each resume (the engine alone would restart at 0)
    for resume in resumes:
        i = records.index(resume)
        nxt = next(r for r in records[i + 1:] if r["type"] == "train")
        assert nxt["global_step"] == resume["global_step"] + 1
        assert nxt["segment"] == resume["segment"]
    # the lr continues its schedule: steps redone after a resume get the same lr as before
    seen: Dict[int, float] = {}
    for r in (r for r in records if r["type"] == "train"):
        if r["global_step"] in seen:
            assert r["lr"] == pytest.approx(seen[r["global_step"]], abs=2e-6)
        seen[r["global_step"]] = r["lr"]
    history = [r["global_step"] for r in continuous(records) if r["type"] == "train"]
    assert history == list(range(1, STEPS + 1))  # continuous, nothing lost or doubled
    lrs = [r["lr"] for r in continuous(records) if r["type"] == "train"]
    assert max(lrs) <= 0.001 + 1e-9 and lrs[-1] < 0.0001  # warmup then cosine down to ~0
    # S3 holds complete checkpoints only, the last one at the last step, and the run files
    infos = _assert_s3_complete_only(s3_server.service(), s3_client, s3_bucket, "runs/tiny", tmp_path)
    names = {i.name: i for i in infos}
    assert names["latest"].global_step == STEPS and "best_of_run" in names
    keys = {o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket, Prefix="runs/tiny/")["Contents"]}
    assert {"runs/tiny/metrics.jsonl", "runs/tiny/run-state.json"} <= keys
    state = json.loads((machine_b / "run-state.json").read_text(encoding="utf-8"))
    assert state["status"] == "completed" and state["segments"] == 3
