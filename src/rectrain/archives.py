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

The rules live in :mod:`rectrain.outputs.archives` and the writing in
:func:`rectrain.outputs.files.extract_tar` (the write gateway: the only code that writes
files), which checks every member by them first; this module is the entry point.
"""

from __future__ import annotations

from rectrain.outputs.archives import UnsafeArchive, check_member, check_members, safe_mode
from rectrain.outputs.files import safe_extract

__all__ = ["UnsafeArchive", "check_member", "check_members", "safe_extract", "safe_mode"]
