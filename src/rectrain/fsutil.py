"""Atomic file writes (nothing half-written is ever left where a rerun would trust it), file
digests and human-readable sizes: the small file helpers every layer shares."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator, Optional, Union

from rectrain.errors import UserError

PathLike = Union[str, "os.PathLike[str]"]


def _read_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux exposes it in
    /proc/self/status); elsewhere set-and-restore once, at import, before any thread runs."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


_UMASK = _read_umask()


def _default_mode() -> int:
    """The mode a plain ``open()`` would give (mkstemp's temp files are owner-only). The umask is
    read once: flipping it on every write would race with other threads creating files."""
    return 0o666 & ~_UMASK


def special_kind(path: PathLike) -> str:
    """What ``path`` is when it is a named pipe, a device or a socket ("a named pipe (FIFO)"),
    judged by its type without opening it; "" for a regular file, a folder or nothing."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return ""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return ""
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def refuse_special(path: PathLike, *, what: str = "file") -> None:
    """The one check every reader and writer makes before opening a path: a named pipe may
    wait forever, a device (/dev/zero) never end, a socket belongs to another program."""
    kind = special_kind(path)
    if kind:
        raise UserError(f"{path} is {kind}, not a regular file: rectrain does not read or write "
                        f"special files (as the {what} it would wait forever or never end).",
                        f"pass a regular file as the {what} (copy the data into one first).")


def sha256_file(path: PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in ``chunk``-sized blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def format_size(n: float) -> str:
    """Bytes as a human-readable size with IEC units (1 KiB = 1024 B): ``"512 B"``, ``"1.5 MiB"``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"


def remove_quietly(path: PathLike) -> None:
    """Remove a (temporary) file if it is there; for clean-up on a failure path."""
    try:
        os.unlink(path)
    except OSError:
        pass


@contextmanager
def atomic_open(path: PathLike, mode: str = "w", encoding: str = "utf-8",
                perm: Optional[int] = None) -> Iterator[IO[Any]]:
    """Write to a temporary file beside ``path`` and rename it over ``path`` on success.
    ``perm``: the file's mode (0o600 for a secret: owner-only from its first byte, as mkstemp
    makes it); default what a plain ``open()`` gives."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=str(target.parent))
    except OSError as exc:  # name the file the user asked for, not our temporary one
        raise OSError(exc.errno, exc.strerror, str(target)) from exc
    try:
        fh = os.fdopen(fd, mode) if "b" in mode else os.fdopen(fd, mode, encoding=encoding, newline="")
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _default_mode() if perm is None else perm)
        os.replace(tmp, target)
    except BaseException:
        remove_quietly(tmp)
        raise


def write_text_atomic(path: PathLike, text: str, perm: Optional[int] = None) -> None:
    with atomic_open(path, "w", perm=perm) as fh:
        fh.write(text)


def write_json_atomic(path: PathLike, data: Any, perm: Optional[int] = None) -> None:
    with atomic_open(path, "w", perm=perm) as fh:
        json.dump(data, fh, ensure_ascii=False, indent=2, sort_keys=False)
        fh.write("\n")
