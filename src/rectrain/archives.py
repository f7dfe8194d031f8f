"""The one way rectrain unpacks an archive it did not write itself (a job's ``model.tar.gz``, a
tar in a training channel) and the one rule for the modes of files it unpacks (also the packed
datasets' shards, which ``storage.pack`` streams through its own reader).

Every member is checked before anything is written: a regular file or a folder (no links,
devices, FIFOs), a relative name without ``..`` that stays inside the destination (also
through a link already there). Then Python's ``tarfile`` data filter extracts, where this
Python has it (3.8.17, 3.9.17, 3.10.12, 3.11.4, 3.12 and later); rectrain's own checks stay in
front of it, since early versions of the filter had bypasses (cpython#107845, #135034). No mode
comes from the archive: files get 0644 (0755 when the owner could execute them), folders 0755;
no setuid, setgid, sticky or world-writable bit.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
from pathlib import Path
from typing import List, Union

from rectrain.errors import DataError

PathLike = Union[str, Path]


class UnsafeArchive(DataError):
    """An archive holds an unsafe member rectrain will not unpack (nothing of it was written)."""


def safe_mode(mode: int, is_dir: bool = False) -> int:
    """The mode an unpacked file or folder gets, whatever the archive said."""
    if is_dir or mode & 0o100:
        return 0o755
    return 0o644


def check_member(member: tarfile.TarInfo, where: str) -> str:
    """The member's normalised relative name; :class:`UnsafeArchive` for anything but a plain
    file or folder whose name stays inside the destination."""
    name = member.name
    fix = "do not unpack this archive; check who can write where it came from."
    if not (member.isfile() or member.isdir()):
        kind = "a link" if member.issym() or member.islnk() else "a device node or FIFO"
        raise UnsafeArchive(f"{where}: {name!r} is {kind}, an unsafe member; refused (nothing "
                            "was unpacked).", fix)
    if not name or "\x00" in name or name.startswith(("/", "\\")) or posixpath.isabs(name) or \
            (len(name) > 1 and name[1] == ":") or ".." in name.replace("\\", "/").split("/"):
        raise UnsafeArchive(f"{where}: {name!r} would land outside the folder, an unsafe "
                            "member; refused (nothing was unpacked).", fix)
    return posixpath.normpath(name)


def _inside(root: str, rel: str) -> bool:
    real = os.path.realpath(os.path.join(root, rel))
    return real == root or real.startswith(root + os.sep)


def safe_extract(archive: PathLike, dest: PathLike) -> List[Path]:
    """Unpack the tar ``archive`` (any compression) into ``dest``; returns the files written.
    :class:`UnsafeArchive` before anything is written when a member is not safe."""
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = os.path.realpath(dest)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                rel = check_member(member, str(archive))
                if not _inside(root, rel):
                    raise UnsafeArchive(f"{archive}: {member.name!r} would land outside {dest} "
                                        "(through a link there), an unsafe member; refused.",
                                        "unpack into an empty folder.")
            if hasattr(tarfile, "data_filter"):
                tar.extractall(root, members=members, filter="data")  # type: ignore[call-arg]
            else:  # the same checks were made above; the modes are set below
                tar.extractall(root, members=members)  # noqa: S202 - every member checked above
    except tarfile.TarError as exc:
        raise UnsafeArchive(f"{archive} is not a readable tar archive ({exc}).",
                            "check the file; upload it again.") from exc
    written = []
    for member in members:
        path = Path(root) / posixpath.normpath(member.name)
        os.chmod(path, safe_mode(member.mode, member.isdir()))
        if member.isfile():
            written.append(path)
    return written
