"""The fault scenarios issue 22 names, each once, judged by the oracle (plain boto3) and the
run's own display, never by rectrain's code:

- connections cut at random during a run: exit 0, S3's latest verified at the final step;
- the snapshots lost while the engine's files are kept, then --resume: never from step 1;
- two runs started on one --checkpoint-s3 prefix: the second exits 2 before training and
  names the owner; the first finishes unharmed;
- the snapshots folder unwritable mid-run: never a silent exit 0.
Real engine on the CPU, real SeaweedFS behind the fault proxy."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any, Dict, List

import pytest

from tests.faults import mounts
from tests.faults.blackbox import (
    STEPS_PER_EPOCH,
    display_records,
    finish,
    kill_tree,
    launch,
    run_env,
    train_argv,
    train_steps,
    wait_until,
)
from tests.faults.oracle import Checker
from tests.faults.proxy import FaultPlan
from tests.faults.trial import TrialEnv

pytestmark = [pytest.mark.slow]


def _launch(env: TrialEnv, argv: List[str], log: Path) -> subprocess.Popen:
    return launch(argv, run_env(env.s3_env, env.proxy.endpoint_url), log)


def _err(log: Path) -> str:
    return log.with_suffix(".err").read_text(encoding="utf-8", errors="replace")


def _s3(env: TrialEnv, name: str) -> str:
    return f"s3://{env.bucket}/{name}"


def _final_in_s3(checker: Checker, s3: str, final: int) -> str:
    """'' when S3's latest pointer names a verified folder at ``final``; else what is wrong."""
    report = checker.check(s3)
    ok = report.pointer_step("latest") == final and not report.anomalies
    return "" if ok else report.summary()


def test_connections_cut_at_random_end_with_exit_0_and_the_final_step_in_s3(
        trial_env: TrialEnv, checker: Checker, tmp_path: Path) -> None:
    # 4 epochs: ~9 MB go up (each checkpoint once: copies are made by the server), a cut every
    # 1 MB on average (a 1.1 MB file needs about three tries)
    epochs = 4
    s3 = _s3(trial_env, "cut")
    trial_env.proxy.plan = FaultPlan(cut_mean_bytes=1.0e6, error_rate=0.05, error_statuses=(503, 500),
                                     stall_rate=0.03, stall_s=(0.2, 1.5))
    argv = train_argv(trial_env.config_for(epochs), tmp_path / "run", s3, trial_env.proxy.endpoint_url)
    proc = _launch(trial_env, argv, tmp_path / "a.log")
    rc = finish(proc)
    trial_env.proxy.off()
    stats = trial_env.proxy.stats()
    assert stats.get("cuts", 0) >= 3, stats  # the network really was bad
    assert rc == 0, f"exit {rc} under cuts {stats}:\n{_err(tmp_path / 'a.log')[-3000:]}"
    assert train_steps(tmp_path / "a.out")[-1] == epochs * STEPS_PER_EPOCH
    problem = _final_in_s3(checker, s3, epochs * STEPS_PER_EPOCH)
    assert not problem, problem


@pytest.mark.parametrize("where", ["local", "s3"])
def test_snapshots_lost_engine_files_kept_resume_never_restarts(
        trial_env: TrialEnv, s3_client: Any, tmp_path: Path, where: str) -> None:
    """The engine's own checkpoint (``latest.*``, complete: it logged the save) is all that is
    left: --resume continues from it, or refuses (exit 2) before training; never step 1."""
    epochs, run = 3, tmp_path / "run"
    s3 = _s3(trial_env, f"lost-{where}")
    # local: no S3 at all, the run folder is everything
    argv = train_argv(trial_env.config_for(epochs), run, s3 if where == "s3" else None,
                      trial_env.proxy.endpoint_url)
    proc = _launch(trial_env, argv, tmp_path / "a.log")

    def saved_after_step_4() -> bool:
        return any(r.get("type") == "save" and r.get("name") == "latest" and r.get("global_step", 0) >= 4
                   for r in display_records(tmp_path / "a.out"))

    assert wait_until(proc, saved_after_step_4), _err(tmp_path / "a.log")[-3000:]
    kill_tree(proc)  # the machine stops; its disk survives
    saves = [r["global_step"] for r in display_records(tmp_path / "a.out")
             if r.get("type") == "save" and r.get("name") == "latest"]
    engine_step = saves[-1]  # the engine logs a save after its last file is written
    shutil.rmtree(run / "checkpoints" / "snapshots")
    if where == "s3":  # S3's copies lost too; the run's files (metrics, run-state) kept
        for obj in s3_client.list_objects_v2(Bucket=trial_env.bucket, Prefix="lost-s3/").get("Contents", []):
            if not obj["Key"].endswith((".jsonl", "run-state.json", ".md", ".yml", ".log", ".png")):
                s3_client.delete_object(Bucket=trial_env.bucket, Key=obj["Key"])
    proc = _launch(trial_env, argv + ["--resume"], tmp_path / "b.log")
    rc = finish(proc)
    steps, err = train_steps(tmp_path / "b.out"), _err(tmp_path / "b.log")
    if rc == 2:
        assert not steps, f"exit 2 after training {steps[:3]}..."
        assert "Traceback" not in err, err[-3000:]
        return
    assert steps, f"exit {rc}, nothing trained:\n{err[-3000:]}"
    assert steps[0] != 1, f"--resume started over at step 1 (the engine's latest was step {engine_step}):\n" \
                          f"{err[-2000:]}"
    assert steps[0] == engine_step + 1, (steps[:3], engine_step)
    assert rc == 0, err[-3000:]


def test_a_second_run_on_the_same_prefix_is_refused_naming_the_owner(
        trial_env: TrialEnv, checker: Checker, s3_client: Any, tmp_path: Path) -> None:
    epochs = 8
    s3 = _s3(trial_env, "shared")
    config = trial_env.config_for(epochs)
    owner = _launch(trial_env, train_argv(config, tmp_path / "a", s3, trial_env.proxy.endpoint_url),
                    tmp_path / "a.log")

    def uploading() -> bool:  # a first checkpoint complete in S3
        listing = s3_client.list_objects_v2(Bucket=trial_env.bucket, Prefix="shared/").get("Contents", [])
        return any(o["Key"].endswith("/_COMPLETE.json") for o in listing)

    assert wait_until(owner, uploading), _err(tmp_path / "a.log")[-3000:]
    others: Dict[str, subprocess.Popen] = {}
    for flag in ("new", "--restart", "--resume"):  # a second machine, each way a user could start it
        extra = [] if flag == "new" else [flag]
        argv = train_argv(config, tmp_path / f"b{flag}", s3, trial_env.proxy.endpoint_url, *extra)
        others[flag] = _launch(trial_env, argv, tmp_path / f"b{flag}.log")
    codes = {flag: finish(proc) for flag, proc in others.items()}
    rc = finish(owner)
    state = json.loads((tmp_path / "a" / "run-state.json").read_text(encoding="utf-8"))
    wrong = []
    for flag, code in codes.items():
        err = _err(tmp_path / f"b{flag}.log")
        trained = train_steps(tmp_path / f"b{flag}.out")
        names_owner = state["run_id"] in err or (socket.gethostname() in err and str(owner.pid) in err)
        if code != 2 or trained or not names_owner:
            wrong.append(f"second run ({flag}): exit {code}, trained {len(trained)} steps, "
                         f"{'names' if names_owner else 'does not name'} the owner (run "
                         f"{state['run_id']}, pid {owner.pid}):\n{err[-1200:]}")
    problem = _final_in_s3(checker, s3, epochs * STEPS_PER_EPOCH)
    if rc != 0 or problem:  # the owner must finish unharmed
        wrong.append(f"the owner: exit {rc}; S3 then:\n{problem}\n{_err(tmp_path / 'a.log')[-1200:]}")
    assert not wrong, "\n".join(wrong)


def test_snapshots_unwritable_mid_run_is_never_a_silent_success(
        trial_env: TrialEnv, checker: Checker, tmp_path: Path) -> None:
    epochs, run = 3, tmp_path / "run"
    s3 = _s3(trial_env, "ro")
    argv = train_argv(trial_env.config_for(epochs), run, s3, trial_env.proxy.endpoint_url)
    proc = _launch(trial_env, argv, tmp_path / "a.log")
    snapshots = run / "checkpoints" / "snapshots"
    try:
        assert wait_until(proc, lambda: len(train_steps(tmp_path / "a.out")) >= 4 and snapshots.is_dir())
    except AssertionError:
        pytest.fail(_err(tmp_path / "a.log")[-3000:])
    try:
        with mounts.read_only(snapshots):
            rc = finish(proc)
    except mounts.MountUnavailable as exc:
        kill_tree(proc)
        pytest.skip(f"cannot make a folder read-only for root here: {exc}")
    err = _err(tmp_path / "a.log")
    assert "Traceback" not in err, err[-3000:]
    if rc == 0:  # then it must be true: the final checkpoint is in S3, verified
        problem = _final_in_s3(checker, s3, epochs * STEPS_PER_EPOCH)
        assert not problem, f"exit 0 with the snapshots folder read-only, but:\n{problem}\n{err[-2000:]}"
    else:
        assert "snapshot" in err.lower(), f"exit {rc} without naming the snapshots:\n{err[-2000:]}"
