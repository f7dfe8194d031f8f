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

import os
import shutil
import tarfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Optional, Sequence, Union

from rectrain.fsutil import atomic_open, refuse_special, remove_quietly, write_json_atomic, write_text_atomic

PathLike = Union[str, "os.PathLike[str]"]

__all__ = [
    "atomic_open", "write_text", "write_bytes", "write_json", "open_append", "open_stream",
    "remove_file", "remove_quietly", "remove_tree", "remove_empty_dir", "copy_file", "link_or_copy",
    "move", "save_figure", "save_with", "tar_writer", "extract_tar", "refuse_special",
    "special_place",
]


def write_text(path: PathLike, text: str) -> None:
    refuse_special(path)
    write_text_atomic(path, text)


def write_bytes(path: PathLike, data: bytes) -> None:
    refuse_special(path)
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def write_json(path: PathLike, data: Any) -> None:
    refuse_special(path)
    write_json_atomic(path, data)


def save_with(path: PathLike, writer: Callable[[IO[Any]], None], mode: str = "wb") -> None:
    """``writer(fh)`` writes the file's content (an image's ``save``, a pickle): atomically."""
    refuse_special(path)
    with atomic_open(path, mode) as fh:
        writer(fh)


def save_figure(fig: Any, path: PathLike, *, dpi: int = 100) -> None:
    """A matplotlib figure as a PNG file, atomically."""
    save_with(path, lambda fh: fig.savefig(fh, format="png", dpi=dpi))


def open_append(path: PathLike, mode: str = "a", encoding: Optional[str] = "utf-8") -> IO[Any]:
    """A log or record file (train.log, metrics.jsonl) opened to add lines at its end."""
    refuse_special(path)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if "b" in mode:
        return open(path, mode)  # noqa: SIM115 - the caller closes it
    return open(path, mode, encoding=encoding)  # noqa: SIM115


def open_stream(path: PathLike, mode: str = "wb", encoding: Optional[str] = "utf-8") -> IO[Any]:
    """A file written from start to end by a stream (a download's ``.part``, a child's log):
    the caller renames it into place (:func:`move`) when it is complete."""
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
                members: Optional[Sequence[tarfile.TarInfo]] = None) -> None:
    """Unpack ``members`` (default all) of an archive the caller has checked into ``dest``."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, members=members, filter="data")
    else:  # Python < 3.12 without the backported filters: the caller checked the members
        tar.extractall(dest, members=members)  # noqa: S202

