"""rectrain as a black box: its command line, the environment it runs in (S3 through the
fault proxy, an optional clock skew), the JSON records it displays, and its process tree
(found in /proc, so a SIGKILL takes the engine too, as when a machine dies)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

REPO = Path(__file__).resolve().parents[2]
CLOCKSHIM = Path(__file__).resolve().parent / "clockshim"
STEPS_PER_EPOCH = 4  # tests/training/tinydata.py: 16 training images, batch 4, drop_last
SUB_EPOCHS = 2  # a `latest` every 2 steps
ATTEMPT_TIMEOUT_S = 300.0


def tiny_configs(root: Path) -> Callable[[int], Path]:
    """``config_for(epochs)``: the tiny CRNN of tests/training/tinydata.py on a dataset made in
    ``root`` once, for that many epochs (a `latest` every 2 steps, an eval every 8, an
    ``iter_epoch_N`` every 2 engine epochs)."""
    from tests.training.tinydata import make_dataset, tiny_config

    data = make_dataset(root / "data")
    made: Dict[int, Path] = {}

    def config_for(epochs: int) -> Path:
        if epochs not in made:
            made[epochs] = tiny_config(data, root / "cfg" / f"e{epochs}.yml", epochs=epochs,
                                       warmup_epoch=1, save_epoch_step=2, eval_step=8)
        return made[epochs]

    return config_for


def descendants(pid: int) -> List[int]:
    """Every live process below ``pid`` (from /proc)."""
    children: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc`` and everything it started (the machine is gone)."""
    family = [proc.pid] + descendants(proc.pid)
    for pid in family:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    for pid in family[1:]:  # engines re-parented to init: wait until they are gone
        for _ in range(100):
            if not os.path.exists(f"/proc/{pid}") or _zombie(pid):
                break
            time.sleep(0.05)


def start_time(pid: int) -> str:
    """The process's start time (with its pid, it names one process), "" when gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def display_records(stdout: Path) -> List[Dict[str, Any]]:
    """The JSON records an attempt displayed (``--display json``): its own, in order."""
    out = []
    if stdout.exists():
        for line in stdout.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
    return out


def train_steps(stdout: Path) -> List[int]:
    """The global steps of the train records the attempt displayed."""
    return [r["global_step"] for r in display_records(stdout)
            if r.get("type") == "train" and isinstance(r.get("global_step"), int)]


def run_env(s3_env: Dict[str, str], endpoint: str, skew_s: float = 0.0) -> Dict[str, str]:
    """The environment of a run: the S3 identity of ``s3_env``, every S3 call to ``endpoint``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
    env.update(s3_env)
    path = [str(REPO / "src")] + ([str(CLOCKSHIM)] if skew_s else [])
    env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_EC2_METADATA_DISABLED": "true", "NO_COLOR": "1",
                "COLUMNS": "200", "PYTHONPATH": os.pathsep.join(path + [env.get("PYTHONPATH", "")]),
                # one writer per prefix at a time here (a second run starts once the first owns
                # it): the lease's read-back wait, made for runs started together, is shortened
                "RECTRAIN_LEASE_SETTLE_S": "0.1"})
    if skew_s:
        env["FAULT_CLOCK_SKEW_S"] = str(skew_s)
    return env


def train_argv(config: Path, run_dir: Path, s3: Optional[str], endpoint: str, *extra: str) -> List[str]:
    """``rectrain train`` on the CPU with JSON display (``s3=None``: no --checkpoint-s3)."""
    remote = ["--checkpoint-s3", s3, "--endpoint-url", endpoint] if s3 else []
    return [sys.executable, "-m", "rectrain", "train", "--config", str(config), "--run-dir",
            str(run_dir), "--device", "cpu", "--sub-epochs", str(SUB_EPOCHS), *remote,
            "--display", "json", *extra]


def launch(argv: List[str], env: Dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``argv`` (stdout to ``log.out``, stderr to ``log.err``) in its own session."""
    with open(log.with_suffix(".out"), "wb") as fo, open(log.with_suffix(".err"), "wb") as fe:
        return subprocess.Popen(argv, env=env, stdout=fo, stderr=fe, start_new_session=True)


def wait_until(proc: subprocess.Popen, ready: Callable[[], bool],
               timeout: float = ATTEMPT_TIMEOUT_S) -> bool:
    """Poll ``ready`` until it holds (True) or ``proc`` ended (False); kills it after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        if proc.poll() is not None:
            return ready()
        time.sleep(0.05)
    kill_tree(proc)
    raise AssertionError(f"not ready within {timeout:.0f} s: {proc.args}")


def reap(family: Dict[int, str]) -> None:
    """SIGKILL what is left of ``family`` (pid -> start time, as :func:`start_time` gave it):
    an engine orphaned by a rectrain that died."""
    for pid, started in family.items():
        if started and start_time(pid) == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def finish(proc: subprocess.Popen, timeout: float = ATTEMPT_TIMEOUT_S) -> int:
    """Wait for ``proc``; kill its tree and fail after ``timeout``."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc)
        raise AssertionError(f"still running after {timeout:.0f} s: {proc.args}") from None
