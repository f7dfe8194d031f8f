"""Extracting tar shards at the disk's speed: members checked against the manifest and written
by worker processes, on every core, in flat memory.

A shard is read forward in 1 MiB reads (:func:`iter_members`, a strict reader of the POSIX
ustar/PAX and GNU long-name formats): a header and a small member's bytes are sliced out of the
same buffer, so a file costs three system calls (``openat`` in its folder's descriptor,
``write``, ``close``; tar adds ``utimensat``, ``fchown`` and ``fchmod``; rectrain sets a time
only when the archive records one: its own pack records none). Each worker takes one contiguous
share of a shard and the same share of its manifest lines (both
sorted by path, so matching them keeps nothing in memory), checks each member's size and sha256,
and only then writes the file. A shard packed in another order is matched in the parent, which
hands chunks of ``(path, offset, size, sha256, mtime)`` to the workers (they ``pread`` those);
memory then grows with the disorder only.

The safety rules of the unpacker live here, and hold in every worker:

- only regular files are written: a link (hard or symbolic), a device, a FIFO or any other
  member type is refused, and so is a member its manifest does not list for that shard, or one
  whose path is absolute or has ``..`` (every manifest path passes
  :func:`rectrain.storage.manifest.check_relpath` when the manifest is opened, and a member is
  written only under the name of its manifest entry);
- a folder that resolves outside the destination (through a link already there) is refused;
  a file is created with ``O_EXCL | O_NOFOLLOW`` (an existing one is replaced by rename, never
  written through);
- no mode, owner or setuid bit is taken from the archive (files get the default mode); only a
  recorded modification time is kept;
- a file whose bytes do not match the manifest is never written.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import posixpath
import secrets
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Deque, Dict, Iterator, List, Optional, Sequence, Tuple

from rectrain.errors import DataError, IntegrityError, RectrainError
from rectrain.outputs import move, open_stream, remove_quietly, write_new_file
from rectrain.storage.manifest import (
    PART_SUFFIX,
    ManifestEntry,
    ManifestFile,
    check_relpath,
    shard_records,
)

BLOCK = 512
_ZERO = bytes(BLOCK)
CHUNK_FILES = 512  # members per task handed to a worker
CHUNK_BYTES = 16 * 1024 * 1024  # ... or fewer, when they are large
IN_MEMORY = 4 * 1024 * 1024  # members up to this size are checked in memory, then written
IN_PROCESS_BELOW = 2_000  # fewer files than this: no worker processes (starting them costs more)
_REGULAR = (b"0", b"\0", b"7")
_EXTENDED = (b"x", b"g", b"L", b"K")  # PAX, global PAX, GNU long name and long link name
_KINDS = {b"1": "a hard link", b"2": "a symbolic link", b"3": "a character device",
          b"4": "a block device", b"6": "a FIFO", b"5": "a folder"}
_Task = Tuple[str, int, int, str, Optional[float]]  # (path, data offset, size, sha256, mtime)
_FOLDER = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


@dataclass
class Member:
    name: str
    kind: bytes  # the type flag
    size: int
    offset: int  # where its data starts
    mtime: Optional[float]  # None: the archive records no time (0; rectrain's pack records none)
    data: Optional[bytes] = None  # its bytes, read with its header when size <= IN_MEMORY


def _damaged(where: str, what: str) -> IntegrityError:
    return IntegrityError(f"{where} is not a readable tar file ({what}).",
                          "pack and upload the dataset again.")


def _number(field: bytes, where: str) -> int:
    if field[:1] in (b"\x80", b"\xff"):  # base-256 (GNU), for sizes over 8 GB
        value = int.from_bytes(field[1:], "big")
        return -value if field[:1] == b"\xff" else value
    text = field.split(b"\0", 1)[0].strip(b" ")
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise _damaged(where, f"bad number {field!r}") from None


def _text(field: bytes, where: str) -> str:
    try:
        return field.split(b"\0", 1)[0].decode("utf-8")
    except UnicodeDecodeError:
        raise _damaged(where, f"a name that is not UTF-8: {field[:40]!r}") from None


def _pax_records(data: bytes, where: str) -> Dict[str, str]:
    out: Dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos:pos + 1] != b"\0":
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            raise _damaged(where, "bad PAX header") from None
        record = data[space + 1:pos + length - 1]
        key, _, value = record.partition(b"=")
        out[key.decode("utf-8")] = value.decode("utf-8")
        pos += length
    return out


def _check_header(head: bytes, stored: int, where: str) -> None:
    """The header's checksum (``stored``, read by :func:`_fields`): the sum of its bytes with the
    checksum field read as spaces (unsigned, else signed as some old tars wrote it). Zero bytes
    add nothing, so they are dropped first (a header is mostly zeros: summing the rest is 3x
    faster)."""
    total = sum(head.translate(None, b"\0")) - sum(head[148:156]) + 256
    if stored != total:
        blanked = head[:148] + b"        " + head[156:]
        if stored != total - 256 * sum(1 for b in blanked if b > 127):
            raise _damaged(where, "header checksum")


def skip_members(fh: IO[bytes], count: int, where: str) -> None:
    """Move ``fh`` past its first ``count`` members that are not folders (another worker reads
    and checks them): each header's type and size only; a PAX ``size`` is honoured."""
    size_override: Optional[int] = None
    while count > 0:
        head = fh.read(BLOCK)
        if len(head) < BLOCK or head == _ZERO:
            raise _damaged(where, "fewer members than its manifest lists")
        kind = head[156:157]
        size = _number(head[124:136], where)
        if kind in (b"x", b"g", b"L", b"K"):
            data = fh.read(size)
            fh.seek(-size % BLOCK, 1)
            if kind == b"x" and b" size=" in data:
                size_override = int(_pax_records(data, where)["size"])
            continue
        if size_override is not None:
            size, size_override = size_override, None
        fh.seek(size + (-size % BLOCK), 1)
        if kind != b"5":
            count -= 1


READ = 1 << 20  # the shard is read forward in reads of this size (tar reads 10 KiB records)


def _refill(fd: int, buf: bytes, at: int, pos: int, need: int) -> Tuple[bytes, int]:
    """The buffer from ``buf[at:]`` on, holding at least ``need`` bytes unless the file ends,
    and the file position of its first byte."""
    pos += at
    rest = buf[at:]
    return rest + os.pread(fd, max(READ, need - len(rest)), pos + len(rest)), pos


def _fields(head: bytes, where: str) -> Tuple[int, int, float]:
    """(size, stored checksum, mtime) of a header: the common case (octal digits, then NUL or
    space) in one go, anything else (base-256, damage) through the strict reader."""
    try:
        return (int(head[124:136].rstrip(b"\0 ") or b"0", 8), int(head[148:156].rstrip(b"\0 ") or b"0", 8),
                float(int(head[136:148].rstrip(b"\0 ") or b"0", 8)))
    except ValueError:
        mtime = float(_number(head[136:148], where))
        return _number(head[124:136], where), _number(head[148:156], where), mtime


def iter_members(fh: IO[bytes], where: str) -> Iterator[Member]:
    """The members of the tar file ``fh`` from its current position (``fh`` itself is not moved):
    POSIX ustar, PAX (``path``, ``size``, ``mtime``) and GNU long names; a header with a bad
    checksum is an error. A regular member of up to IN_MEMORY bytes comes with its ``data``:
    headers and small members are sliced out of 1 MiB reads, so a member costs no system call
    of its own (no ``pread``, no ``lseek``)."""
    fd, pos = fh.fileno(), fh.tell()  # pos: the file position of buf[0]
    buf, at = b"", 0
    pax: Dict[str, str] = {}
    glob: Dict[str, str] = {}
    long_name: Optional[str] = None
    while True:
        if at + BLOCK > len(buf):
            buf, pos = _refill(fd, buf, at, pos, BLOCK)
            at = 0
        head = buf[at:at + BLOCK]
        at += BLOCK
        if len(head) < BLOCK:
            if not head:
                return
            raise _damaged(where, "truncated header")
        if head == _ZERO:
            return
        size, stored, mtime = _fields(head, where)
        _check_header(head, stored, where)
        kind = head[156:157]
        padded = size + (-size % BLOCK)
        data: Optional[bytes] = None
        if size <= IN_MEMORY and (kind in _REGULAR or kind in _EXTENDED):
            if at + padded > len(buf):
                buf, pos = _refill(fd, buf, at, pos, padded)
                at = 0
            data = buf[at:at + size]
            if len(data) < size:
                raise _damaged(where, "truncated member")
        elif kind in _EXTENDED:
            raise _damaged(where, f"a {size}-byte extended header")
        if kind in _EXTENDED:
            at += padded
            if kind == b"x":
                pax = _pax_records(data or b"", where)
            elif kind == b"g":
                glob.update(_pax_records(data or b"", where))
            elif kind == b"L":
                long_name = (data or b"").split(b"\0", 1)[0].decode("utf-8")
            continue
        name: Optional[str] = None
        if pax or glob or long_name is not None:
            fields = {**glob, **pax}
            name = fields.get("path", long_name)  # the header's own field may be cut mid-character
            if "size" in fields and int(fields["size"]) != size:
                size = int(fields["size"])
                padded, data = size + (-size % BLOCK), None
            if "mtime" in fields:
                mtime = float(fields["mtime"])
            pax, long_name = {}, None
        if name is None:
            name = _text(head[:100], where)
            if head[257:262] == b"ustar" and head[345:346] != b"\0":
                name = _text(head[345:500], where) + "/" + name
        yield Member(name, kind, size, pos + at, mtime or None, data)
        at += padded


class Targets:
    """Where files go inside ``dst``: each folder is created and checked once (a folder that
    resolves outside ``dst``, through a link, is refused)."""

    def __init__(self, dst: Path) -> None:
        self.dst = dst
        self.dst.mkdir(parents=True, exist_ok=True)
        self.dst_real = os.path.realpath(dst)
        self.checked: Dict[str, str] = {}
        self.open_parent = ""
        self.open_fd = -1

    def folder(self, rel: str, where: str) -> str:
        parent = posixpath.dirname(rel)
        real = self.checked.get(parent)
        if real is None:
            folder = self.dst / parent if parent else self.dst
            folder.mkdir(parents=True, exist_ok=True)
            real = os.path.realpath(folder)
            if real != self.dst_real and not real.startswith(self.dst_real + os.sep):
                raise DataError(
                    f"'{rel}' would land outside {self.dst} (through a link); refused.",
                    "extract into an empty folder.",
                    path=where,
                )
            self.checked[parent] = real
        return real

    def target(self, rel: str, where: str) -> Path:
        return Path(self.folder(rel, where)) / posixpath.basename(rel)

    def place(self, rel: str, where: str) -> Tuple[int, str]:
        """(an open descriptor of ``rel``'s checked folder, the file's name in it). Files come
        sorted by path, so one folder's stay open while its files are written: the folder is
        resolved and checked once, and a link swapped in later cannot redirect them."""
        parent, _, name = rel.rpartition("/")
        if parent != self.open_parent or self.open_fd < 0:
            real = self.folder(rel, where)
            self.close()
            self.open_fd = os.open(real, _FOLDER)
            self.open_parent = parent
        return self.open_fd, name

    def close(self) -> None:
        if self.open_fd >= 0:
            os.close(self.open_fd)
            self.open_fd = -1


# ----------------------------------------------------------------------------- the workers' part
def write_members(shard: str, items: Sequence[_Task]) -> Tuple[int, Optional[str]]:
    """Check and write ``items`` of the tar file ``shard`` (targets are absolute paths in checked
    folders). Returns (files written, None) or (files written before it, the problem)."""
    fd = os.open(shard, os.O_RDONLY)
    done = 0
    try:
        for item in items:
            problem = _write_one(fd, item)
            if problem:
                return done, f"{item[0]}: {problem}"
            done += 1
    finally:
        os.close(fd)
    return done, None


def _check(size: int, sha: str, want_size: int, want_sha: str) -> str:
    if size == want_size and sha == want_sha:
        return ""
    return (f"does not match the manifest ({size} bytes, sha256 {sha[:16]}...; expected {want_size} "
            f"bytes, {want_sha[:16]}...). The file was discarded")


def _write_small(target: str, data: bytes, mtime: Optional[float]) -> None:
    # O_EXCL | O_NOFOLLOW; an existing file is replaced by rename, never written through
    write_new_file(target, data, mtime, part_suffix=PART_SUFFIX)


def _write_large(fd: int, target: str, offset: int, size: int, sha: str, mtime: Optional[float]) -> str:
    tmp = f"{target}.{secrets.token_hex(4)}{PART_SUFFIX}"
    digest = hashlib.sha256()
    got = 0
    try:
        with open_stream(tmp, new=True) as out:  # O_EXCL | O_NOFOLLOW
            while got < size:
                chunk = os.pread(fd, min(1 << 20, size - got), offset + got)
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                got += len(chunk)
        problem = _check(got, digest.hexdigest(), size, sha)
        if problem:
            remove_quietly(tmp)
            return problem
        if mtime is not None:
            os.utime(tmp, (mtime, mtime))
        move(tmp, target)
    except BaseException:
        remove_quietly(tmp)
        raise
    return ""


_TARGETS: Dict[str, Targets] = {}  # per worker process: folders already made and checked


def extract_range(shard: str, where: str, manifest: str, span: Tuple[int, int], name: str, first: int,
                  last: int, final: bool, dst: str) -> Tuple[int, str, Any]:
    """A worker's share of one shard: its regular members ``first`` to ``last - 1`` and the same
    entries of the manifest (both in path order), matched, checked and written; the ``final``
    share also makes sure nothing follows. Returns (files written, outcome, detail): outcome
    "ok", "refused" (detail says why), "oserror" (detail: errno, text, file name), or "order"
    (members and entries are not in the same order: the parent extracts that shard itself,
    matching in any order)."""
    try:
        return _extract_range(shard, where, manifest, span, name, first, last, final, dst)
    except RectrainError as exc:  # handed back as text: rectrain's errors do not pickle
        return 0, "refused", str(exc)
    except OSError as exc:  # re-raised by the parent (a full disk is not a damaged dataset)
        return 0, "oserror", (exc.errno, exc.strerror or str(exc), exc.filename)


def _extract_range(shard: str, where: str, manifest: str, span: Tuple[int, int], name: str, first: int,
                   last: int, final: bool, dst: str) -> Tuple[int, str, str]:
    targets = _TARGETS.get(dst) or _TARGETS.setdefault(dst, Targets(Path(dst)))
    records = shard_records(Path(manifest), span, name, first)
    index = done = 0
    with open(shard, "rb") as fh:
        fd = fh.fileno()
        skip_members(fh, first, where)
        index = first
        for member in iter_members(fh, where):
            if member.kind not in _REGULAR:
                if member.kind == b"5":
                    continue
                return done, "refused", f"{where} holds '{member.name}', which is " \
                    f"{_KINDS.get(member.kind, 'not a regular file')}; refused."
            if index >= last:
                if final:
                    return done, "refused", f"{where} holds '{member.name}', which its manifest does not " \
                        "list for it; refused."
                break
            record = next(records, None)
            if record is None or record[0] != member.name:
                return done, "order", ""
            problem = _write_member(fd, targets, member, record[1], record[2], where)
            if problem:
                return done, "refused", f"{where}:{member.name}: {problem}."
            index += 1
            done += 1
    if index < last:
        return done, "order", ""
    return done, "ok", ""


def _write_member(fd: int, targets: Targets, member: Member, size: int, sha256: str, where: str) -> str:
    """Check one regular member (read with its header, or streamed from the shard ``fd`` when
    large) against the ``size`` and ``sha256`` its manifest lists, then write it; returns the
    problem, if any. (Its name is one the manifest lists: checked when the manifest was opened.)"""
    data = member.data
    if data is None:
        if member.size != size:
            return _check(member.size, "?" * 64, size, sha256)
        target = targets.folder(member.name, where) + "/" + posixpath.basename(member.name)
        return _write_large(fd, target, member.offset, member.size, sha256, member.mtime)
    got = hashlib.sha256(data).hexdigest()
    if len(data) != size or got != sha256:
        return _check(len(data), got, size, sha256)
    dir_fd, base = targets.place(member.name, where)
    write_new_file(base, data, member.mtime, part_suffix=PART_SUFFIX, dir_fd=dir_fd)
    return ""


def _write_one(fd: int, item: _Task) -> str:
    target, offset, size, sha, mtime = item
    if size > IN_MEMORY:
        return _write_large(fd, target, offset, size, sha, mtime)
    data = os.pread(fd, size, offset)
    problem = _check(len(data), hashlib.sha256(data).hexdigest(), size, sha)
    if not problem:
        _write_small(target, data, mtime)
    return problem


# ----------------------------------------------------------------------------- the parent's part
class _Expected:
    """A shard's manifest entries, taken in the order its members come (any order works; memory
    grows only with the disorder)."""

    def __init__(self, entries: Iterator[ManifestEntry]) -> None:
        self.entries = entries
        self.pending: Dict[str, ManifestEntry] = {}

    def take(self, name: str) -> Optional[ManifestEntry]:
        entry = self.pending.pop(name, None)
        if entry is not None:
            return entry
        for entry in self.entries:
            if entry.path == name:
                return entry
            self.pending[entry.path] = entry
        return None

    def left(self) -> List[str]:
        rest = list(self.pending)
        for entry in self.entries:
            rest.append(entry.path)
            if len(rest) > 3:
                break
        return rest


def usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


SKIP_COST = 0.05  # moving past a member (skip_members) against checking and writing one, measured


def shares(count: int, parts: int) -> List[int]:
    """Where each worker's contiguous share of ``count`` members starts (and the end): each
    worker first moves past the members before its share, so later shares are a little smaller
    and all end together."""
    weights = [(1 - SKIP_COST) ** i for i in range(parts)]
    total = sum(weights)
    bounds, start = [0], 0.0
    for weight in weights:
        start += count * weight / total
        bounds.append(min(count, round(start)))
    bounds[-1] = count
    return bounds


class Extractor:
    """Extracts shards into ``dst`` with ``processes`` worker processes (0: in this process).
    Use as a context manager; create it before starting threads (the workers are forked)."""

    def __init__(self, dst: Path, processes: int, on_files: Optional[Callable[[int], None]] = None) -> None:
        self.targets = Targets(dst)
        self.on_files = on_files
        self.pool: Optional[ProcessPoolExecutor] = None
        self.inflight: Deque[Tuple[Future, str]] = deque()
        # shards handed to the workers by extract_shard(wait=False), settled by drain()
        self.shards: Deque[Tuple[Path, str, str, ManifestFile, List[Future]]] = deque()
        self.limit = max(2, processes * 3)
        self.processes = processes
        if processes > 0 and "fork" in multiprocessing.get_all_start_methods():
            self.pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork"))
            for future in [self.pool.submit(os.getpid) for _ in range(processes)]:
                future.result()  # started now, while this process has no other threads

    def __enter__(self) -> Extractor:
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if exc[0] is None:
                self.drain()  # nothing handed to the workers is left unfinished on a normal exit
        finally:
            self._close()

    def _close(self) -> None:
        self.targets.close()
        if self.pool is not None:
            for future in [f for f, _ in self.inflight] + [f for s in self.shards for f in s[4]]:
                future.cancel()
            self.pool.shutdown(wait=True)
            self.pool = None

    def _run(self, shard: str, items: List[_Task], where: str) -> None:
        if self.pool is None:
            self._settle(write_members(shard, items), where)
            return
        self.inflight.append((self.pool.submit(write_members, shard, items), where))
        while len(self.inflight) >= self.limit:
            self._wait_one()

    def _wait_one(self) -> None:
        future, where = self.inflight.popleft()
        self._settle(future.result(), where)

    def _settle(self, outcome: Tuple[int, Optional[str]], where: str) -> None:
        done, problem = outcome
        if self.on_files is not None and done:
            self.on_files(done)
        if problem:
            raise IntegrityError(f"{where}:{problem[len(self.targets.dst_real) + 1:]}.",
                                 "pack and upload the dataset again from the original copy.")

    def drain(self) -> None:
        """Wait for everything handed to the workers; raises the first problem they met. (A shard
        whose members came in another order is extracted again here, handing the workers more.)"""
        while self.inflight or self.shards:
            if self.inflight:
                self._wait_one()
            else:
                self._settle_shard(*self.shards.popleft())

    def extract_shard(self, shard_path: Path, name: str, where: str, manifest: ManifestFile,
                      wait: bool = True) -> int:
        """Extract one shard of ``manifest`` (returns how many files it holds): split among the
        workers, each taking one contiguous share (each reads its own headers and manifest lines,
        so this process does almost nothing), or, when the shard's members are not in its
        manifest's order, matched here (:meth:`extract_here`). ``wait=False``: return at once;
        :meth:`drain` waits for it (the next shards keep the workers busy meanwhile)."""
        count = manifest.counts.get(name, 0)
        if self.pool is None or count < 2 * CHUNK_FILES or name not in manifest.spans:
            return self.extract_here(shard_path, where, manifest.shard_entries(name))
        parts = max(1, min(self.processes, count // CHUNK_FILES))
        bounds = shares(count, parts)
        span, path = manifest.spans[name], str(manifest.path)
        futures = [self.pool.submit(extract_range, str(shard_path), where, path, span, name, bounds[i],
                                    bounds[i + 1], i == parts - 1, self.targets.dst_real)
                   for i in range(parts)]
        self.shards.append((shard_path, name, where, manifest, futures))
        if wait:
            self.drain()
        return count

    def _settle_shard(self, shard_path: Path, name: str, where: str, manifest: ManifestFile,
                      futures: List[Future]) -> None:
        outcomes = [f.result() for f in futures]
        for done, outcome, detail in outcomes:
            if self.on_files is not None and done:
                self.on_files(done)
            if outcome == "refused":
                raise IntegrityError(detail, "pack the dataset again with rectrain data pack.")
            if outcome == "oserror":
                number, text, filename = detail
                raise OSError(number, text, filename)
        if any(outcome == "order" for _, outcome, _ in outcomes):
            self.extract_here(shard_path, where, manifest.shard_entries(name))

    def extract_here(self, shard_path: Path, name: str, entries: Iterator[ManifestEntry]) -> int:
        """Check the members of one shard against its manifest ``entries`` and hand them to the
        workers. Returns how many members it holds (all are listed, and all listed are there,
        else IntegrityError)."""
        expected = _Expected(entries)
        items: List[_Task] = []
        size = count = written = 0
        shard = str(shard_path)
        here = self.pool is None  # checked and written in this process, as they are read
        with open(shard_path, "rb") as fh:
            for member in iter_members(fh, name):
                if member.kind == b"5":
                    continue
                if member.kind not in _REGULAR:
                    kind = _KINDS.get(member.kind, "not a regular file")
                    raise IntegrityError(f"{name} holds '{member.name}', which is {kind}; refused.",
                                         "pack the dataset again with rectrain data pack.")
                entry = expected.take(member.name)
                if entry is None:
                    raise IntegrityError(
                        f"{name} holds '{member.name}', which its manifest does not list for it; refused.",
                        "pack the dataset again with rectrain data pack.")
                count += 1
                if here:
                    problem = _write_member(fh.fileno(), self.targets, member, entry.size, entry.sha256, name)
                    if problem:
                        where = f"{self.targets.dst_real}/{member.name}"
                        self._settle((count - 1 - written, f"{where}: {problem}"), name)
                    if count - written >= CHUNK_FILES:
                        self._settle((count - written, None), name)
                        written = count
                    continue
                check_relpath(member.name, name)
                target = self.targets.folder(member.name, name) + "/" + posixpath.basename(member.name)
                items.append((target, member.offset, member.size, entry.sha256, member.mtime))
                size += member.size
                if len(items) >= CHUNK_FILES or size >= CHUNK_BYTES:
                    self._run(shard, items, name)
                    items, size = [], 0
        if items:
            self._run(shard, items, name)
        if count > written and here:
            self._settle((count - written, None), name)
        absent = expected.left()
        if absent:
            raise IntegrityError(f"{name} lacks file(s) its manifest lists (e.g. {absent[0]}).",
                                 "pack and push the dataset again.")
        return count


__all__ = ["Extractor", "Member", "Targets", "iter_members", "usable_cpus", "write_members"]
