"""The campaign's disk and clock faults are real: a full tmpfs refuses writes with ENOSPC, a
read-only bind mount refuses root, both are undone even when the body fails; the clock shim
shifts the wall clock of a Python process (and only when asked)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults import mounts
from tests.faults.blackbox import CLOCKSHIM


def test_a_full_tmpfs_says_enospc_and_is_unmounted_even_on_failure(tmp_path: Path,
                                                                   mount_allowed: bool) -> None:
    if not mount_allowed:
        pytest.skip("this process may not mount a tmpfs (CI runs as root)")
    disk = tmp_path / "disk"
    with pytest.raises(RuntimeError, match="boom"), mounts.tmpfs(disk, 4 * 1024 * 1024):
        assert mounts.is_mounted(disk)
        (disk / "a").write_bytes(b"x" * 100_000)
        mounts.fill(disk, leave_bytes=50_000)
        with pytest.raises(OSError) as full:
            (disk / "b").write_bytes(b"y" * 200_000)
        assert full.value.errno == errno.ENOSPC
        mounts.unfill(disk)
        (disk / "b").write_bytes(b"y" * 200_000)  # room again
        raise RuntimeError("boom")
    assert not mounts.is_mounted(disk) and mounts.mounts_under(tmp_path) == []


def test_a_read_only_folder_refuses_root_and_comes_back(tmp_path: Path, mount_allowed: bool) -> None:
    if os.geteuid() == 0 and not mount_allowed:
        pytest.skip("root without the right to mount")
    folder = tmp_path / "snapshots"
    folder.mkdir()
    with pytest.raises(RuntimeError), mounts.read_only(folder):
        with pytest.raises(OSError) as refused:
            (folder / "x").write_bytes(b"x")
        assert refused.value.errno in (errno.EROFS, errno.EACCES)
        raise RuntimeError("the body failed")
    (folder / "x").write_bytes(b"x")  # writable again
    assert mounts.mounts_under(tmp_path) == []


@pytest.mark.parametrize("skew", ["-7200", ""])
def test_the_clock_shim_shifts_time_time_only_when_asked(skew: str) -> None:
    code = "import time, datetime; print(time.time() - datetime.datetime.now().timestamp())"
    env = dict(os.environ, PYTHONPATH=str(CLOCKSHIM), FAULT_CLOCK_SKEW_S=skew)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert abs(float(out.stdout) - float(skew or 0)) < 5
