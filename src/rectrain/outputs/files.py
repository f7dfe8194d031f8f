"""The only code in rectrain that creates, replaces or deletes files and folders.

Every other module calls these functions (``tests/test_architecture_gateway.py`` fails on a
file-writing call anywhere else), so the rules hold for every command, the ones added
tomorrow included:

- a file is written beside its target and renamed over it (:func:`atomic_open`): nothing
  half-written is left where a rerun would trust it;
- nothing is ever written through a named pipe, a device or a socket (:func:`refuse_special`);
- a folder is never deleted when it is the current folder, a parent of it, the home folder or
  the root (:func:`remove_tree`), whatever the caller computed.

Whether a command may write a given path at all (over an input, over a file rectrain did not
write) is decided before, by :mod:`rectrain.outputs.rules`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import tarfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Callable, Iterator, List, Optional, Sequence, Union

from rectrain.fsutil import atomic_open, refuse_special, remove_quietly, write_json_atomic, write_text_atomic
from rectrain.outputs.archives import UnsafeArchive, check_members, safe_mode

PathLike = Union[str, "os.PathLike[str]"]
# a new file: never opened through a link already there, never written into an existing inode
_CREATE_NEW = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
               | getattr(os, "O_CLOEXEC", 0))
_UTIME_FD = os.utime in os.supports_fd

__all__ = [
    "atomic_open", "write_text", "write_bytes", "write_json", "open_append", "open_stream",
    "remove_file", "remove_quietly", "remove_tree", "remove_empty_dir", "copy_file", "link_or_copy",
    "move", "save_figure", "save_with", "tar_writer", "extract_tar", "safe_extract", "write_new_file",
    "refuse_special", "write_json_reserved",
    "special_place", "open_lock", "symlink",
]


def write_text(path: PathLike, text: str, *, perm: Optional[int] = None) -> None:
    """``perm=0o600``: a secret (keys, tokens), owner-only from its first byte."""
    refuse_special(path)
    write_text_atomic(path, text, perm=perm)


def write_bytes(path: PathLike, data: bytes) -> None:
    refuse_special(path)
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def write_json(path: PathLike, data: Any, *, perm: Optional[int] = None) -> None:
    """``perm=0o600``: a secret (keys, tokens), owner-only from its first byte."""
    refuse_special(path)
    write_json_atomic(path, data, perm=perm)


RESERVE_BYTES = 4096  # room kept at the end of a reserved file for its final rewrite


def write_json_reserved(path: PathLike, data: Any, *, reserve: int = RESERVE_BYTES) -> None:
    """``data`` as JSON written atomically, followed by ``reserve`` bytes of whitespace (JSON
    allows it after the value; every JSON reader skips it), so the file keeps disk blocks for
    a later, slightly longer state. When the atomic write finds the disk full (ENOSPC,
    EDQUOT), the new JSON is written in place over the file's own blocks instead, padded to its
    old size (nothing new to allocate: a run's final status still lands on a full disk); when
    it does not fit there, the disk-full error is raised. The in-place write is not atomic (a
    crash in it leaves a file readers refuse as damaged): used only when the alternative is
    keeping a stale state."""
    refuse_special(path)
    body = (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    try:
        with atomic_open(path, "wb") as fh:
            fh.write(body + b" " * max(reserve - 1, 0) + b"\n")
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not _rewrite_in_place(path, body):
            raise


def _rewrite_in_place(path: PathLike, body: bytes) -> bool:
    """``body`` over the start of the existing file ``path``, whitespace up to its old size (no
    new block, no change of size); False when there is no such file or ``body`` is larger."""
    try:
        fd = os.open(str(path), os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        size = os.fstat(fd).st_size
        if len(body) >= size:
            return False
        view = memoryview(body + b" " * (size - len(body) - 1) + b"\n")
        offset = 0
        while offset < len(view):
            offset += os.pwrite(fd, view[offset:], offset)
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def save_with(path: PathLike, writer: Callable[[IO[Any]], None], mode: str = "wb") -> None:
    """``writer(fh)`` writes the file's content (an image's ``save``, a pickle): atomically."""
    refuse_special(path)
    with atomic_open(path, mode) as fh:
        writer(fh)


def save_figure(fig: Any, path: PathLike, *, dpi: int = 100) -> None:
    """A matplotlib figure as a PNG file, atomically."""
    save_with(path, lambda fh: fig.savefig(fh, format="png", dpi=dpi))


def open_append(path: PathLike, mode: str = "a", encoding: Optional[str] = "utf-8",
                *, perm: Optional[int] = None) -> IO[Any]:
    """A log or record file (train.log, metrics.jsonl) opened to add lines at its end;
    ``perm``: the mode a new file gets (0o600: a log that may name secrets)."""
    refuse_special(path)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if perm is not None:
        fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, perm)
        if "b" in mode:
            return os.fdopen(fd, mode)
        return os.fdopen(fd, mode, encoding=encoding)
    if "b" in mode:
        return open(path, mode)  # noqa: SIM115 - the caller closes it
    return open(path, mode, encoding=encoding)  # noqa: SIM115


def open_stream(path: PathLike, mode: str = "wb", encoding: Optional[str] = "utf-8", *,
                new: bool = False) -> IO[Any]:
    """A file written from start to end by a stream (a download's ``.part``, a child's log):
    the caller renames it into place (:func:`move`) when it is complete. ``new``: a temporary
    name that must not exist yet, created with ``O_EXCL | O_NOFOLLOW`` (never opened through a
    link planted there)."""
    if new:
        fd = os.open(path, _CREATE_NEW, 0o666)
        if "b" in mode:
            return os.fdopen(fd, mode)
        return os.fdopen(fd, mode, encoding=encoding)
    refuse_special(path)
    if "b" in mode:
        return open(path, mode)  # noqa: SIM115 - the caller closes it
    return open(path, mode, encoding=encoding)  # noqa: SIM115


def remove_file(path: PathLike, *, missing_ok: bool = True) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        if not missing_ok:
            raise


def special_place(target: Path) -> str:
    """What ``target`` (resolved) is when it is a folder no command may replace or delete: the
    current folder, a parent of it, the root or the home folder; "" otherwise."""
    cwd = Path(os.getcwd()).resolve()
    if target == cwd:
        return "the current folder"
    if target in cwd.parents:
        return "a parent of the current folder"
    if target in {Path(target.anchor), Path.home().resolve()}:
        return "the root or home folder"
    return ""


def remove_tree(path: PathLike, *, ignore_errors: bool = False) -> None:
    """Delete a folder rectrain made (a staging folder, a replaced output). Never the current
    folder, a parent of it, the home folder or the root: an internal error, whoever asked."""
    target = Path(os.path.abspath(str(path)))
    if target.is_symlink():
        target.unlink()
        return
    where = special_place(target.resolve())
    if where:
        raise RuntimeError(f"refusing to delete {path}: it is {where}")
    shutil.rmtree(target, ignore_errors=ignore_errors)


def remove_empty_dir(path: PathLike) -> None:
    os.rmdir(path)


def copy_file(src: PathLike, dst: PathLike, *, metadata: bool = False) -> None:
    """Copy ``src`` to ``dst`` through a temporary file beside ``dst`` (never half a copy)."""
    refuse_special(src)
    refuse_special(dst)
    with open(src, "rb") as fin, atomic_open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)
    if metadata:
        shutil.copystat(src, dst)


def link_or_copy(src: PathLike, dst: PathLike) -> None:
    """``dst`` as a hard link to ``src`` where the file system allows, else a copy."""
    try:
        os.link(src, dst)
    except OSError:
        copy_file(src, dst, metadata=True)


def move(src: PathLike, dst: PathLike) -> None:
    """Rename ``src`` to ``dst`` (replacing a file there); across file systems, copy then delete."""
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != 18:  # EXDEV: another file system
            raise
        shutil.move(str(src), str(dst))


@contextmanager
def tar_writer(path: PathLike, mode: str = "w", **kw: Any) -> Iterator[tarfile.TarFile]:
    """A tar archive written at ``path`` (the caller writes to a temporary name and moves it)."""
    refuse_special(path)
    with tarfile.open(path, mode, **kw) as tar:  # type: ignore[call-overload]
        yield tar


def extract_tar(tar: tarfile.TarFile, dest: PathLike,
                members: Optional[Sequence[tarfile.TarInfo]] = None, *, where: str = "") -> List[Path]:
    """The one extractor of archives rectrain did not write (a job's ``model.tar.gz``, a tar in
    a training channel; :func:`safe_extract` opens them): ``members`` (default all) are checked
    first by :mod:`rectrain.outputs.archives`' rules (a plain file or folder, a relative name
    without ``..`` that stays inside ``dest``, also through a link there), and nothing is
    written when one is unsafe (:class:`UnsafeArchive`); then Python's data filter extracts
    where this Python has it; no mode comes from the archive (:func:`safe_mode`). Returns the
    files written. (Packed datasets' shards are rectrain's own format: storage/extract.py writes
    their checked members through :func:`write_new_file` and :func:`open_stream`.)"""
    Path(dest).mkdir(parents=True, exist_ok=True)
    root = os.path.realpath(dest)
    members = list(members) if members is not None else tar.getmembers()
    names = check_members(members, root, where or str(getattr(tar, "name", "") or "the archive"), str(dest))
    if hasattr(tarfile, "data_filter"):
        tar.extractall(root, members=members, filter="data")  # type: ignore[call-arg]
    else:  # a Python without the data filter: every member was checked above
        tar.extractall(root, members=members)  # noqa: S202
    written = []
    for member, rel in zip(members, names):
        path = Path(root) / rel
        os.chmod(path, safe_mode(member.mode, member.isdir()))
        if member.isfile():
            written.append(path)
    return written


def safe_extract(archive: PathLike, dest: PathLike) -> List[Path]:
    """Unpack the tar ``archive`` (any compression) into ``dest`` (:func:`extract_tar`); returns
    the files written. :class:`UnsafeArchive` before anything is written when a member is not
    safe, or when the archive cannot be read."""
    archive, dest = Path(archive), Path(dest)
    try:
        with tarfile.open(archive) as tar:
            return extract_tar(tar, dest, where=str(archive))
    except tarfile.TarError as exc:
        raise UnsafeArchive(f"{archive} is not a readable tar archive ({exc}).",
                            "check the file; upload it again.") from exc


def write_new_file(path: str, data: bytes, mtime: Optional[float] = None, *,
                   part_suffix: str = ".part", dir_fd: Optional[int] = None) -> None:
    """``data`` as the file ``path``, created with ``O_EXCL | O_NOFOLLOW`` (never written through
    a link or into an inode shared with another name); when something is already there, written
    under a temporary name beside it and renamed over it. A half-written file is never left
    under its name. ``mtime``: the modification time it gets. ``dir_fd``: ``path`` is a name in
    that open folder (the unpacker checks a folder once and creates its files in it, without
    the kernel walking the whole path again for each). Raw ``os`` calls, no file object: the
    unpacker writes millions of small files with it, in forked workers."""
    try:
        fd = os.open(path, _CREATE_NEW, 0o666, dir_fd=dir_fd)
    except FileExistsError:
        tmp = f"{path}.{secrets.token_hex(4)}{part_suffix}"
        try:
            write_new_file(tmp, data, mtime, part_suffix=part_suffix, dir_fd=dir_fd)
            os.replace(tmp, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
        return
    try:
        written = os.write(fd, data)  # one call for a small file; the loop for a short write
        if written < len(data):
            view = memoryview(data)[written:]
            while view:
                view = view[os.write(fd, view):]
        if mtime is not None and _UTIME_FD:
            os.utime(fd, (mtime, mtime))
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path, dir_fd=dir_fd)
        raise
    os.close(fd)
    if mtime is not None and not _UTIME_FD:
        os.utime(path, (mtime, mtime), dir_fd=dir_fd)


def open_lock(path: PathLike, perm: int = 0o644) -> int:
    """A lock file (a run folder's ``.rectrain-run.lock``) opened read-write, made when missing:
    a descriptor the caller ``flock()``s, writes its holder into and closes."""
    refuse_special(path)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, perm)


def symlink(target: str, link: PathLike) -> None:
    """``link`` as a symbolic link to ``target`` (``os.devnull``: a file a child process writes
    that nobody keeps), replacing a file or link there; never a folder."""
    p = Path(link)
    if p.is_symlink() or p.is_file():
        os.unlink(p)
    os.symlink(target, p)
