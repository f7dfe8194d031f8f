"""A killed engine is called out of memory only when the kernel says so: a process the kernel's
OOM killer stopped (a real memory cgroup with a small limit, where the machine allows one) vs.
one killed by a plain SIGKILL, and the counter files of cgroup v1/v2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from rectrain.training.failures import FailureClassifier, OomWatch, _cgroup_files, read_oom_kills

HOG = "import time; time.sleep(0.2); x = bytearray(512 * 1024 * 1024); x[::4096] = b'x' * len(x[::4096])"


def test_counter_files_of_cgroup_v1_and_v2(tmp_path: Path) -> None:
    proc = tmp_path / "cgroup"
    proc.write_text("4:memory:/jobs/a\n0::/user.slice/x\n", encoding="utf-8")
    files = _cgroup_files(str(proc), str(tmp_path))
    assert files[:2] == [tmp_path / "memory" / "jobs/a" / "memory.oom_control",
                         tmp_path / "user.slice/x" / "memory.events"]
    v2 = tmp_path / "user.slice/x" / "memory.events"
    v2.parent.mkdir(parents=True)
    v2.write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n", encoding="utf-8")
    assert read_oom_kills(files) == (v2, 2)
    watch = OomWatch(files, dmesg=())
    assert watch.evidence() == ""  # readable, unchanged: the kernel says no
    v2.write_text("oom 2\noom_kill 3\n", encoding="utf-8")
    assert "oom_kill 2 -> 3" in (watch.evidence() or "")
    assert OomWatch([tmp_path / "nope"], dmesg=()).evidence() is None  # nothing readable


def test_a_plain_sigkill_is_not_called_out_of_memory(tmp_path: Path) -> None:
    counter = tmp_path / "memory.events"
    counter.write_text("oom_kill 0\n", encoding="utf-8")
    watch = OomWatch([counter], dmesg=())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    child.send_signal(signal.SIGKILL)
    rc = child.wait(timeout=30)
    failure = FailureClassifier().classify(rc, oom=watch.evidence([child.pid]))
    assert failure is not None and failure.kind == "killed"
    assert "signal 9 (SIGKILL" in failure.message and "no out-of-memory kill" in failure.message
    unknown = FailureClassifier().classify(137, oom=None)
    assert unknown is not None and "could not be read" in unknown.message


def _memory_cgroup(limit: int) -> Path:
    root = Path("/sys/fs/cgroup/memory")
    group = root / f"rectrain-test-{uuid.uuid4().hex[:8]}"
    try:
        group.mkdir()
        (group / "memory.limit_in_bytes").write_text(str(limit))
        if (group / "memory.memsw.limit_in_bytes").exists():
            (group / "memory.memsw.limit_in_bytes").write_text(str(limit))
    except OSError as exc:
        if group.exists():
            group.rmdir()
        pytest.skip(f"no memory cgroup can be made here ({exc})")
    return group


def test_a_kernel_oom_kill_is_called_out_of_memory() -> None:
    if os.geteuid() != 0 or not Path("/sys/fs/cgroup/memory/cgroup.procs").exists():
        pytest.skip("needs root and a cgroup v1 memory controller")
    group = _memory_cgroup(64 * 1024 * 1024)
    try:
        watch = OomWatch([group / "memory.oom_control"], dmesg=())
        child = subprocess.Popen([sys.executable, "-c", HOG],
                                 preexec_fn=lambda: (group / "cgroup.procs").write_text(str(os.getpid())))
        rc = child.wait(timeout=120)
        assert rc == -signal.SIGKILL
        failure = FailureClassifier().classify(rc, oom=watch.evidence([child.pid]))
        assert failure is not None and failure.kind == "out_of_memory", failure
        assert "oom_kill 0 -> 1" in failure.message
    finally:
        group.rmdir()
