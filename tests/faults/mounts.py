"""Real disk faults: a small tmpfs (ENOSPC on demand) and a read-only bind mount (a folder that
even root cannot write). Both need the right to mount (CI runs as root); without it
:class:`MountUnavailable` is raised and the tests skip. Every mount is undone on the way out,
whatever happened inside (lazily if something still holds it)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List

BALLAST = ".fault-ballast"


class MountUnavailable(RuntimeError):
    """This process may not mount file systems here."""


def _mount(*args: str) -> None:
    if shutil.which("mount") is None:
        raise MountUnavailable("no mount command")
    proc = subprocess.run(["mount", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise MountUnavailable(f"mount {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")


def umount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def is_mounted(path: Path) -> bool:
    target = os.path.realpath(path)
    with open("/proc/self/mounts", encoding="utf-8") as fh:
        return any(line.split()[1] == target for line in fh if len(line.split()) > 1)


@contextmanager
def tmpfs(path: Path, size_bytes: int) -> Iterator[Path]:
    """A tmpfs of ``size_bytes`` at ``path`` (created); unmounted at the end."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size_bytes},mode=0777", "tmpfs", str(path))
    try:
        yield path
    finally:
        umount(path)


@contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """``path`` (a folder) read-only from now on, for root too: a read-only bind mount over
    itself (non-root: mode 0555 is enough). Writable again at the end."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(mode)
        return
    _mount("--bind", str(path), str(path))
    try:
        for attempt in range(100):  # "busy" while a file in it is open for writing: try again
            try:
                _mount("-o", "remount,ro,bind", str(path))
                break
            except MountUnavailable:
                if attempt == 99:
                    raise
                time.sleep(0.02)
        yield path
    finally:
        umount(path)


def fill(root: Path, leave_bytes: int) -> int:
    """Fill the file system of ``root`` until about ``leave_bytes`` are free (a ballast file
    in ``root``, grown while something else may be writing there); returns its size."""
    path = root / BALLAST
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(20):
            want = shutil.disk_usage(root).free - leave_bytes
            if want <= 0:
                break
            try:
                os.posix_fallocate(fd, os.fstat(fd).st_size, want)
                break
            except OSError as exc:  # another writer took some space meanwhile: ask again
                if exc.errno != errno.ENOSPC:
                    raise
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def unfill(root: Path) -> None:
    (root / BALLAST).unlink(missing_ok=True)


def mounts_under(root: Path) -> List[str]:
    """Mount points at or under ``root`` (left-overs to report)."""
    base = os.path.realpath(root)
    with open("/proc/self/mounts", encoding="utf-8") as fh:
        points = [line.split()[1] for line in fh if len(line.split()) > 1]
    return [p for p in points if p == base or p.startswith(base + "/")]
