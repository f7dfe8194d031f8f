"""The engine process under supervision, with a real child process standing in for the engine
(a Python that prints and sleeps, with a grandchild like the engine's data-loader workers)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from rectrain.errors import EnvironmentProblem
from rectrain.training.supervise import EngineProcess, Stopper

# prints its grandchild's pid, then sleeps; the grandchild sleeps too
ENGINE = ("import subprocess, sys, time; "
          "w = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
          "print('worker', w.pid, flush=True); time.sleep(60)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie counts as gone: it has exited and only waits for its parent to reap it
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_stop_ends_the_whole_process_group_and_logs_every_line(tmp_path: Path) -> None:
    stopper, log = Stopper(), tmp_path / "train.log"
    with EngineProcess([sys.executable, "-c", ENGINE], dict(os.environ), stopper, log,
                       header="# segment 0\n") as child:
        lines = []
        for raw in child.lines():
            lines.append(raw)
            stopper.stop("stopped")
        rc = child.wait()
    worker = int(lines[0].split()[1])
    assert rc == -signal.SIGTERM and stopper.reason == "stopped"
    assert _gone(worker), "the engine's worker outlived it"
    assert log.read_bytes() == b"# segment 0\n" + b"".join(lines)


def test_leaving_early_does_not_leave_the_engine_running(tmp_path: Path) -> None:
    stopper = Stopper()
    with pytest.raises(RuntimeError), EngineProcess(
            [sys.executable, "-c", ENGINE], dict(os.environ), stopper, tmp_path / "train.log",
            header="") as child:
        next(child.lines())
        raise RuntimeError("rectrain itself failed")
    assert child.proc is not None and child.proc.poll() is not None


def test_an_engine_that_cannot_start_is_named_with_the_fix(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-python")
    with pytest.raises(EnvironmentProblem, match="cannot start the engine") as info, \
            EngineProcess([missing], {}, Stopper(), tmp_path / "train.log", header="# segment 0\n"):
        pass
    assert "rectrain doctor" in (info.value.fix or "")
    assert (tmp_path / "train.log").read_text() == "# segment 0\n"


def test_time_budget_is_reported_spent(tmp_path: Path) -> None:
    stopper = Stopper()
    with EngineProcess([sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ),
                       stopper, tmp_path / "train.log", header="", max_seconds=0.2) as child:
        assert not child.budget_spent
        deadline = time.monotonic() + 10
        while not child.budget_spent and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child.budget_spent
        stopper.stop("stopped")
        assert child.wait() == -signal.SIGTERM
