"""Issue 21, one owner per run: while a training runs (real engine on the CPU, checkpoints to a
real SeaweedFS prefix), every second writer is refused before it trains, exit 2, naming the
owner's pid and host: `train --resume` / `--restart` / a new run in the same run dir, another
run on the same `--checkpoint-s3` prefix, `ckpt push` into that prefix. Two trainings started
together on one new prefix: one trains, the other exits 2 naming it. A run whose process was
killed (kill -9) does not block its resume (a stale lock is recovered), and `monitor --follow`
of it ends instead of following a dead run forever."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from tests.hostile import world
from tests.hostile.harness import cli_env

pytestmark = pytest.mark.slow
USER = 2
HOST = socket.gethostname()


def _long_config(root: Path) -> Path:
    text = (root / "cfg" / "train.yml").read_text(encoding="utf-8")
    text = text.replace("epoch_num: 2", "epoch_num: 1000")
    path = root / "cfg" / "long.yml"
    path.write_text(text, encoding="utf-8")
    return path


def _argv(run_dir: str, *extra: str, config: str = "cfg/long.yml") -> List[str]:
    return [sys.executable, "-m", "rectrain", "train", "--config", config, "--run-dir", run_dir, "--device",
            "cpu",
            "--display", "plain", "--no-tensorboard", *extra]


def _start(argv: List[str], cwd: Path, env: Dict[str, str]) -> subprocess.Popen:
    log = tempfile.TemporaryFile()  # noqa: SIM115 - read by _output
    proc = subprocess.Popen(argv, cwd=str(cwd), env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    proc.log = log  # type: ignore[attr-defined]
    return proc


def _output(proc: subprocess.Popen) -> str:
    proc.log.seek(0)  # type: ignore[attr-defined]
    return proc.log.read().decode("utf-8", errors="replace")  # type: ignore[attr-defined]


_train_steps = world.train_steps


def _wait_training(proc: subprocess.Popen, run_dir: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"training ended early: {_output(proc)[-3000:]}"
        if _train_steps(run_dir):
            return
        time.sleep(0.2)
    raise AssertionError(f"no training step within {timeout} s: {_output(proc)[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=120)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _run(argv: List[str], cwd: Path, env: Dict[str, str],
         timeout: float = 240) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, cwd=str(cwd), env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, start_new_session=True)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"hung: {' '.join(argv[3:])} still running after {timeout} s") from exc


@pytest.fixture(scope="module")
def owner(s3_server: Any, hostile_world: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    """A training that runs for the whole module (run dir runA, checkpoints to s3://BUCKET/runs/a)."""
    root = tmp_path_factory.mktemp("owner")
    world.place(root, "data", "cfg", "run")
    _long_config(root)
    bucket = f"owner-{uuid.uuid4().hex[:10]}"
    s3_server.client().create_bucket(Bucket=bucket)
    env = cli_env(s3_server.env)
    prefix = f"s3://{bucket}/runs/a"
    proc = _start(_argv("runA", "--checkpoint-s3", prefix), root, env)
    try:
        _wait_training(proc, root / "runA")
        yield {"root": root, "proc": proc, "env": env, "prefix": prefix, "bucket": bucket}
    finally:
        _stop(proc)


def _refused_naming_the_owner(result: subprocess.CompletedProcess, owner: Dict[str, Any], what: str) -> None:
    out = result.stdout + result.stderr
    problems = []
    if result.returncode != USER:
        problems.append(f"exit {result.returncode}, expected {USER}")
    if "Traceback (most recent call last)" in out:
        problems.append("a traceback was printed")
    if str(owner["proc"].pid) not in out:
        problems.append(f"the owner's pid {owner['proc'].pid} is not named")
    if HOST.lower() not in out.lower():
        problems.append(f"the owner's host {HOST} is not named")
    if "fix:" not in out.lower():
        problems.append("no fix")
    if owner["proc"].poll() is not None:
        problems.append(f"the owner's training ended (exit {owner['proc'].returncode})")
    assert not problems, f"{what}: " + "; ".join(problems) + f"\n--- output ---\n{out[-3000:]}"


def test_resume_while_the_run_trains(owner: Dict[str, Any]) -> None:
    before = _train_steps(owner["root"] / "runA")
    result = _run(_argv("runA", "--resume", "--checkpoint-s3", owner["prefix"], "--max-steps",
                        str(max(before) + 3)), owner["root"], owner["env"])
    _refused_naming_the_owner(result, owner, "train --resume while the run trains")
    steps = _train_steps(owner["root"] / "runA")
    assert steps[:len(before)] == before and steps == sorted(steps), "metrics.jsonl interleaved"


def test_restart_while_the_run_trains(owner: Dict[str, Any]) -> None:
    result = _run(_argv("runA", "--restart", "--max-steps", "3"), owner["root"], owner["env"])
    _refused_naming_the_owner(result, owner, "train --restart while the run trains")


def test_new_run_in_the_same_dir_while_it_trains(owner: Dict[str, Any]) -> None:
    result = _run(_argv("runA", "--max-steps", "3"), owner["root"], owner["env"])
    _refused_naming_the_owner(result, owner, "train (a new run) in the run dir of a running training")


def test_second_run_on_the_same_prefix(owner: Dict[str, Any]) -> None:
    result = _run(_argv("runB", "--checkpoint-s3", owner["prefix"], "--max-steps", "3"), owner["root"],
                  owner["env"])
    _refused_naming_the_owner(result, owner, "a second run on the same --checkpoint-s3 prefix")
    assert not (owner["root"] / "runB").exists(), "the refused run left its run dir behind"


def test_ckpt_push_into_a_prefix_a_training_owns(owner: Dict[str, Any]) -> None:
    result = _run([sys.executable, "-m", "rectrain", "ckpt", "push", "run", owner["prefix"]], owner["root"],
                  owner["env"])
    _refused_naming_the_owner(result, owner, "ckpt push into the prefix of a running training")


def test_two_trainings_started_together(s3_server: Any, hostile_world: Path,
                                        tmp_path: Path) -> None:  # noqa: ARG001
    """Both start at the same moment on one new prefix: exactly one trains; the other exits 2
    before training, naming the first's pid and host, and leaves no run dir."""
    world.place(tmp_path, "data", "cfg")
    bucket = f"together-{uuid.uuid4().hex[:8]}"
    s3_server.client().create_bucket(Bucket=bucket)
    env = cli_env(s3_server.env)
    prefix = f"s3://{bucket}/runs/shared"
    procs = [_start(_argv(name, "--checkpoint-s3", prefix, "--max-steps", "12", config="cfg/train.yml"),
                    tmp_path, env) for name in ("one", "two")]
    try:
        for p in procs:
            p.wait(timeout=400)
    finally:
        for p in procs:
            _stop(p)
    codes = sorted(p.returncode for p in procs)
    outs = {name: _output(p) for name, p in zip(("one", "two"), procs)}
    assert codes == [0, USER], f"exit codes {codes} (both trained on one prefix?)\n" + \
        "\n".join(f"--- {k} ---\n{v[-1500:]}" for k, v in outs.items())
    loser = next(i for i, p in enumerate(procs) if p.returncode == USER)
    winner = procs[1 - loser]
    out = outs[("one", "two")[loser]]
    assert str(winner.pid) in out and HOST.lower() in out.lower(), out[-3000:]
    assert "Traceback" not in out and not (tmp_path / ("one", "two")[loser]).exists()


def _descendants(pid: int) -> List[int]:
    """Every process below ``pid`` (Linux /proc), children first."""
    found: List[int] = []
    todo = [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def test_killed_run_does_not_block_its_resume(hostile_world: Path, tmp_path: Path) -> None:  # noqa: ARG001
    """kill -9 of a training (no clean-up at all): `monitor --follow` of the run ends (the run is
    not running any more), the engine dies with it (it writes into the run no longer), and
    `train --resume` continues it (the stale lock is recovered)."""
    world.place(tmp_path, "data", "cfg")
    _long_config(tmp_path)
    env = cli_env()
    proc = _start(_argv("runC"), tmp_path, env)
    children: List[int] = []
    try:
        _wait_training(proc, tmp_path / "runC")
        time.sleep(2)
        children = _descendants(proc.pid)  # the engine runs in its own session: killpg misses it
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    problems = []
    assert children, "no engine process found under the training"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in children):
        time.sleep(0.2)
    survivors = [pid for pid in children if Path(f"/proc/{pid}").exists()]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    if survivors:
        problems.append(f"the engine outlived a kill -9 of rectrain (pids {survivors}), "
                        "still writing the run")
    started = time.monotonic()
    try:
        mon = subprocess.run([sys.executable, "-m", "rectrain", "monitor", "runC", "--follow", "--interval",
                              "1"],
                             cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120,
                             stdin=subprocess.DEVNULL)
        if "Traceback" in mon.stdout + mon.stderr:
            problems.append("monitor printed a traceback")
    except subprocess.TimeoutExpired:
        problems.append("monitor --follow still following the killed run after 120 s")
    seconds = time.monotonic() - started
    step = max(_train_steps(tmp_path / "runC") or [0])
    resumed = _run(_argv("runC", "--resume", "--max-steps", str(step + 4)), tmp_path, env)
    if resumed.returncode != 0:
        problems.append(f"--resume after kill -9: exit {resumed.returncode}: "
                        f"{(resumed.stdout + resumed.stderr).strip().splitlines()[-1:]}")
    assert not problems, "; ".join(problems) + f" (monitor took {seconds:.0f} s)"
