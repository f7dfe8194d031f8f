"""`rectrain train --checkpoint-s3` attacked between attempts: interrupted, the identity turned
read-only, run-state.json lost, objects in the checkpoint prefix corrupted, S3 gone before the
last upload. It never starts over from step 0 while a usable checkpoint exists, refuses
--resume with the list of what it found when nothing is usable, refuses a new run over old
checkpoints without --restart, and exits 5 (naming `rectrain ckpt push`) when its final
checkpoint could not be uploaded. Real engine on the CPU, real SeaweedFS."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Dict, List

import pytest

from rectrain.checkpoints.local import read_pointer, verify_snapshot
from rectrain.checkpoints.remote import list_remote, scan_remote
from rectrain.errors import EXIT_INTERRUPTED, EXIT_NOT_UPLOADED, EXIT_USER_ERROR
from rectrain.runlog.records import read_metrics
from rectrain.storage.s3 import S3Uri
from tests.hostile.harness import REPO
from tests.training.tinydata import make_dataset, tiny_config


def _env(server_env: Dict[str, str]) -> Dict[str, str]:
    env = dict(os.environ)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        env.pop(key, None)
    env.update(server_env)
    env.update({"PYTHONPATH": str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", ""),
                "NO_COLOR": "1", "COLUMNS": "200", "AWS_EC2_METADATA_DISABLED": "true"})
    return env


def _argv(config: Path, run_dir: Path, s3: str, *extra: str) -> List[str]:
    return [sys.executable, "-m", "rectrain", "train", "--config", str(config), "--run-dir",
            str(run_dir), "--device", "cpu", "--sub-epochs", "2", "--checkpoint-s3", s3,
            "--display", "json", *extra]


def _start(argv: List[str], env: Dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _run(argv: List[str], env: Dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)


def _train_steps(run_dir: Path, this_attempt: bool = False) -> List[int]:
    """Train steps in metrics.jsonl (``this_attempt``: after the last resume record only; the
    history of earlier attempts is restored from S3 on a new machine)."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    records = read_metrics(path)
    if this_attempt:
        marks = [i for i, r in enumerate(records) if r["type"] == "resume"]
        records = records[marks[-1]:] if marks else []
    return [r["global_step"] for r in records if r["type"] == "train"]


def _wait_for_step(proc: subprocess.Popen, run_dir: Path, step: int, timeout: float = 180,
                   resumed: bool = False) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"training ended early: {proc.stderr.read().decode()[-3000:]}"
        steps = _train_steps(run_dir, this_attempt=resumed)
        if steps and steps[-1] >= step:
            return steps[-1]
        time.sleep(0.1)
    raise AssertionError(f"no step {step} within {timeout} s")


def _sigterm(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == EXIT_INTERRUPTED, err.decode()[-3000:]
    return err.decode()


def _first_step_after_each_resume(run_dir: Path) -> List[tuple]:
    records = read_metrics(run_dir / "metrics.jsonl")
    out = []
    for i, r in enumerate(records):
        if r["type"] == "resume":
            nxt = next((x for x in records[i + 1:] if x["type"] == "train"), None)
            out.append((r["global_step"], nxt["global_step"] if nxt else None))
    return out


@pytest.mark.slow
def test_train_checkpoint_s3_fails_closed(tmp_path: Path, seaweed_factory) -> None:  # noqa: ANN001
    from rectrain.engine import find_engine
    from rectrain.errors import EnvironmentProblem

    try:
        find_engine()
    except EnvironmentProblem as exc:
        pytest.skip(f"no PaddleOCR engine: {exc}")
    server = seaweed_factory(read_only_identity=True)
    admin = server.client()
    bucket = f"hostile-{uuid.uuid4().hex[:10]}"
    admin.create_bucket(Bucket=bucket)
    config = tiny_config(make_dataset(tmp_path / "data"), tmp_path / "cfg" / "c.yml", epochs=10,
                         warmup_epoch=1, save_epoch_step=2, eval_step=8)
    s3 = f"s3://{bucket}/runs/x"
    env = _env(server.env)

    # 1) a first attempt, interrupted mid-run: S3 holds latest and iter_epoch_N of run R
    proc = _start(_argv(config, tmp_path / "a", s3), env)
    _wait_for_step(proc, tmp_path / "a", 10)
    _sigterm(proc)
    run_id = json.loads((tmp_path / "a" / "run-state.json").read_text(encoding="utf-8"))["run_id"]
    remote = {i.name: i for i in list_remote(server.service(), S3Uri.parse(s3))}
    assert remote["latest"].global_step > 0 and remote["latest"].run_id == run_id
    periodic = sorted((i for i in remote.values() if i.name.startswith("iter_epoch_")),
                      key=lambda i: i.global_step)
    assert periodic, sorted(remote)

    # 2) the identity turned read-only: refused before any step, with the IAM statement
    ro = _run(_argv(config, tmp_path / "b", s3, "--resume"), _env(server.read_only_env))
    assert ro.returncode == EXIT_USER_ERROR, ro.stderr[-3000:]
    assert "s3:PutObject" in ro.stderr and '"Effect": "Allow"' in ro.stderr, ro.stderr[-3000:]
    assert not (tmp_path / "b" / "train.log").exists()  # the engine never started
    assert "Traceback" not in ro.stderr

    # 3) a new machine, run-state.json gone from S3, `latest` corrupted there: resumes the same
    #    run from the newest usable checkpoint (never step 0), the step count continues
    latest_key = remote["latest"].location[len(f"s3://{bucket}/"):] + "/latest.pdparams"
    admin.put_object(Bucket=bucket, Key=latest_key, Body=b"damaged")
    admin.delete_object(Bucket=bucket, Key="runs/x/run-state.json")
    # never adopted silently (issue 25): refused naming the run, then continued once named
    refused = _run(_argv(config, tmp_path / "c0", s3, "--resume"), env)
    assert refused.returncode == EXIT_USER_ERROR and f"--adopt-run {run_id}" in refused.stderr, \
        refused.stderr[-3000:]
    proc = _start(_argv(config, tmp_path / "c", s3, "--resume", "--adopt-run", run_id), env)
    _wait_for_step(proc, tmp_path / "c", periodic[-1].global_step + 2, resumed=True)
    err = _sigterm(proc)
    resumes = _first_step_after_each_resume(tmp_path / "c")
    assert resumes == [(periodic[-1].global_step, periodic[-1].global_step + 1)], (resumes, err[-2000:])
    if remote["latest"].global_step > periodic[-1].global_step:
        assert "latest" in err and "damaged" in err  # said why latest was not used
    state = json.loads((tmp_path / "c" / "run-state.json").read_text(encoding="utf-8"))
    assert state["run_id"] == run_id  # the run named, checked in the markers, not a new run

    # 4) a new run over these checkpoints, neither --resume nor --restart: refused
    fresh = _run(_argv(config, tmp_path / "d", s3), env)
    assert fresh.returncode == EXIT_USER_ERROR, fresh.stderr[-3000:]
    assert "--resume" in fresh.stderr and "--restart" in fresh.stderr
    assert not (tmp_path / "d" / "train.log").exists()  # the engine never started

    # 5) every checkpoint in S3 damaged: --resume refuses with the list of what was found
    for folder in scan_remote(server.service(), S3Uri.parse(s3)):
        if folder.info is not None:
            first = sorted(folder.info.files)[0]
            admin.put_object(Bucket=bucket, Key=f"runs/x/{folder.name}/{first}", Body=b"damaged")
    admin.put_object(Bucket=bucket, Key="runs/x/s00000099-iter_epoch_99-abcdef/iter_epoch_99.pdparams",
                     Body=b"x")
    none = _run(_argv(config, tmp_path / "e", s3, "--resume"), env)
    assert none.returncode == EXIT_USER_ERROR, none.stderr[-3000:]
    assert "none can be resumed" in none.stderr and "--restart" in none.stderr
    listed = [line for line in none.stderr.splitlines() if line.startswith("  s3://")]
    assert any("-latest-" in line for line in listed), none.stderr[-3000:]
    assert any("-iter_epoch_99-" in line and "no _COMPLETE.json" in line for line in listed)
    assert all(f"-{i.name}-" in none.stderr for i in periodic)
    assert "no _COMPLETE.json" in none.stderr and "Traceback" not in none.stderr
    assert not (tmp_path / "e" / "train.log").exists()  # the engine never started

    # 6) S3 gone before the last upload: the run finishes, keeps everything locally, exits 5
    #    naming what is missing and the command that uploads it; S3 back, a resume with nothing
    #    left to train uploads it (exit 0), and that command then works
    s3y = f"s3://{bucket}/runs/y"
    proc = _start(_argv(config, tmp_path / "f", s3y, "--max-steps", "12"), env)
    _wait_for_step(proc, tmp_path / "f", 3)
    server.stop()
    _, raw = proc.communicate(timeout=300)
    err = raw.decode()
    assert proc.returncode == EXIT_NOT_UPLOADED, err[-3000:]
    assert "-latest-" in err and "(latest)" in err and "rectrain ckpt push" in err, err[-3000:]
    last_upload_warning = [line for line in err.splitlines() if "upload of checkpoint" in line][-1]
    assert "will retry" not in last_upload_warning
    final = max(_train_steps(tmp_path / "f"))
    kept = read_pointer(tmp_path / "f" / "checkpoints" / "snapshots", "latest")
    assert kept is not None and verify_snapshot(kept[0]).global_step == kept[1].global_step
    server.start()
    # a resume with nothing left to train uploads what only this machine holds: its exit 0 means
    # the final checkpoint is in S3 (campaign seed 20 exited 0 with S3 behind); push then agrees
    again = _run(_argv(config, tmp_path / "f", s3y, "--resume"), env)
    assert again.returncode == 0 and "nothing is left to train" in again.stderr, again.stderr[-3000:]
    remote = {i.name: i for i in list_remote(server.service(), S3Uri.parse(s3y))}
    assert remote["latest"].global_step == kept[1].global_step and "best_of_run" in remote, sorted(remote)
    push = re.search(r"`rectrain (ckpt push [^`]+)`", err)
    assert push is not None
    pushed = _run([sys.executable, "-m", "rectrain", *push.group(1).split()], env)
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    latest = {i.name: i for i in list_remote(server.service(), S3Uri.parse(s3y))}["latest"]
    assert final - 2 <= latest.global_step <= final


def test_ctrl_c_in_the_middle_of_ckpt_push(s3, tmp_path: Path, s3_server, s3_client, s3_bucket) -> None:  # noqa: ANN001
    """SIGINT while `rectrain ckpt push` uploads: exit 75, every checkpoint S3 names is complete
    (its folder's marker and files match), and the rerun finishes the rest."""
    import pickle

    from rectrain.checkpoints.remote import download_snapshot

    ck = tmp_path / "run" / "checkpoints"
    ck.mkdir(parents=True)
    # the run's state names the run (issue 22: ckpt push never writes a marker without a run id)
    (tmp_path / "run" / "run-state.json").write_text('{"run_id": "r8", "sub_epochs": 1}', encoding="utf-8")
    for epoch in range(1, 9):
        name = f"iter_epoch_{epoch}"
        # (a pickle ends with its STOP opcode "."; a file without it is a save cut short)
        (ck / f"{name}.pdopt").write_bytes(os.urandom(3 * 1024 * 1024) + b".")
        (ck / f"{name}.pdparams").write_bytes(os.urandom(3 * 1024 * 1024) + b".")
        with open(ck / f"{name}.states", "wb") as fh:
            pickle.dump({"best_model_dict": {"acc": 0.1 * epoch}, "epoch": epoch,
                         "global_step": 10 * epoch}, fh, protocol=2)
        past = time.time() - 60
        for suffix in (".pdopt", ".pdparams", ".states"):
            os.utime(ck / f"{name}{suffix}", (past, past))
    prefix = f"s3://{s3_bucket}/pushed"
    env = _env(s3_server.env)
    argv = [sys.executable, "-m", "rectrain", "ckpt", "push", str(tmp_path / "run"), prefix]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        listing = s3_client.list_objects_v2(Bucket=s3_bucket, Prefix="pushed/").get("Contents", [])
        if any(o["Key"].endswith(".pdopt") for o in listing):
            break  # the worst moment: in the middle of a folder
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, err.decode()[-2000:]
    assert "Traceback" not in err.decode() and "rerun" in err.decode()
    named = list_remote(s3, S3Uri.parse(prefix))
    for info in named:  # whatever S3 names is complete
        folder = info.location.rsplit("/", 1)[1]
        download_snapshot(s3, S3Uri.parse(prefix), folder, tmp_path / "check")
    assert len(named) < 8
    rerun = _run(argv, env)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert {i.name for i in list_remote(s3, S3Uri.parse(prefix))} == {f"iter_epoch_{e}" for e in range(1, 9)}
