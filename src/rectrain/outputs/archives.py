"""The rules for unpacking an archive rectrain did not write (a job's ``model.tar.gz``, a tar in
a training channel), checked by :func:`rectrain.outputs.files.extract_tar` before it writes
anything; also the one rule for the modes of unpacked files. Callers unpack with
:func:`rectrain.outputs.files.safe_extract`.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
from typing import List, Sequence

from rectrain.errors import DataError


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


def check_members(members: Sequence[tarfile.TarInfo], root: str, where: str, dest: str) -> List[str]:
    """Every member's normalised relative name (:func:`check_member`), each also checked to stay
    inside ``root`` (the destination, resolved) through any link already there; the first
    unsafe one is :class:`UnsafeArchive`, before anything is written."""
    names = []
    for member in members:
        rel = check_member(member, where)
        if not _inside(root, rel):
            raise UnsafeArchive(f"{where}: {member.name!r} would land outside {dest} "
                                "(through a link there), an unsafe member; refused.",
                                "unpack into an empty folder.")
        names.append(rel)
    return names


__all__ = ["UnsafeArchive", "check_member", "check_members", "safe_mode"]
