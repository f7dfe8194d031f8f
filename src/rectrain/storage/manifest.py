"""The dataset manifest, ``manifest.jsonl``: one JSON object per file (relative path, size,
sha256), after a header line.

It is written with every dataset upload, uploaded LAST (so a partial upload never looks
finished) and checked on every dataset download. A packed dataset's manifest also names its
tar shards (header ``shards``) and, for each file, the shard that holds it.

Header: ``{"rectrain_manifest": 1, "kind": "files"|"packed", "files": N, "bytes": B,
"shards": [...], "dirs": [...]}``. The content is deterministic (no timestamps), so an
unchanged dataset gives a byte-identical manifest and a second push transfers nothing.
Manifests without the header line (only ``{"path", "size", "sha256"}`` lines) are read too.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from rectrain.errors import DataError
from rectrain.outputs import atomic_open, open_stream, refuse_special, remove_tree
from rectrain.storage.spool import RUN, SortedSpool

MANIFEST_NAME = "manifest.jsonl"
PART_SUFFIX = ".rectrain-part"  # temporary download names; never uploaded, never trusted
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DRIVE = re.compile(r"^[A-Za-z]:")
# an entry exactly as rectrain writes it (json.dumps, sorted keys, no escapes in the texts): read
# without the JSON parser (5x faster; ten million lines are read at every open); any other line is
# parsed as JSON and checked the same way
_CANONICAL = re.compile(r'\{"path": "([^"\\\x00-\x1f]*)", "sha256": "([0-9a-f]{64})", '
                        r'(?:"shard": "([^"\\\x00-\x1f]*)", )?"size": (0|[1-9][0-9]{0,17})\}\r?\n?\Z')
_CANONICAL_BYTES = re.compile(_CANONICAL.pattern.encode("ascii"))  # the same, for undecoded lines
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ManifestEntry:
    path: str
    size: int
    sha256: str
    shard: Optional[str] = None

    def as_dict(self) -> Dict[str, object]:
        data: Dict[str, object] = {"path": self.path, "size": self.size, "sha256": self.sha256}
        if self.shard is not None:
            data["shard"] = self.shard
        return data


@dataclass
class Manifest:
    entries: List[ManifestEntry]
    kind: str = "files"  # or "packed"
    shards: List[ManifestEntry] = field(default_factory=list)
    dirs: List[str] = field(default_factory=list)  # empty directories of the original tree
    shrink: Optional[Dict[str, object]] = None  # data pack --max-height (rectrain.data.shrink)

    @property
    def files(self) -> int:
        return len(self.entries)

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries)

    def by_path(self) -> Dict[str, ManifestEntry]:
        return {e.path: e for e in self.entries}

    def to_jsonl(self) -> str:
        lines = [header_line(self.kind, self.files, self.total_bytes, self.shards, self.dirs, self.shrink)]
        lines.extend(entry_line(e) for e in sorted(self.entries, key=lambda e: e.path))
        return "".join(lines)

    def to_bytes(self) -> bytes:
        return self.to_jsonl().encode("utf-8")

    @classmethod
    def parse(cls, text: str, source: str = MANIFEST_NAME) -> Manifest:
        header = ManifestHeader()
        entries: List[ManifestEntry] = []
        seen: Dict[str, int] = {}
        for lineno, line in enumerate(text.splitlines(), 1):
            parsed = parse_line(line, source, lineno)
            if isinstance(parsed, ManifestHeader):
                header = parsed
            elif parsed is not None:
                if parsed.path in seen:
                    raise _twice(parsed.path, seen[parsed.path], source, lineno)
                seen[parsed.path] = lineno
                entries.append(parsed)
        return cls(entries=entries, kind=header.kind, shards=header.shards, dirs=header.dirs,
                   shrink=header.shrink)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        return cls.parse(Path(path).read_text(encoding="utf-8"), str(path))


@dataclass
class ManifestHeader:
    """The first line of a manifest (defaults for a manifest without one)."""

    kind: str = "files"
    files: Optional[int] = None
    bytes: Optional[int] = None
    shards: List[ManifestEntry] = field(default_factory=list)
    dirs: List[str] = field(default_factory=list)
    shrink: Optional[Dict[str, object]] = None


def header_line(kind: str, files: int, total_bytes: int, shards: List[ManifestEntry], dirs: List[str],
                shrink: Optional[Dict[str, object]] = None) -> str:
    """The header as :meth:`Manifest.to_jsonl` writes it (so both give the same bytes)."""
    header: Dict[str, object] = {"rectrain_manifest": 1, "kind": kind, "files": files, "bytes": total_bytes}
    if kind == "packed":
        header["shards"] = [s.as_dict() for s in shards]
    if dirs:
        header["dirs"] = sorted(dirs)
    if shrink:
        header["shrink"] = shrink
    return json.dumps(header, ensure_ascii=False, sort_keys=True) + "\n"


def entry_line(entry: ManifestEntry) -> str:
    return json.dumps(entry.as_dict(), ensure_ascii=False, sort_keys=True) + "\n"


def parse_line(line: str, source: str, lineno: int) -> Union[ManifestHeader, ManifestEntry, None]:
    """One line of a manifest, checked: the header, an entry, or None for a blank line."""
    fast = _CANONICAL.match(line)
    if fast is not None:
        path, sha, shard, size = fast.groups()
        return ManifestEntry(check_relpath(path, source, lineno), int(size), sha, shard)
    if not line.strip():
        return None
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise DataError(
            f"not a JSON line ({exc}).",
            "the manifest is damaged: push the dataset again to rewrite it.",
            path=source,
            line=lineno,
        ) from exc
    if not isinstance(obj, dict):
        raise _damaged("expected a JSON object.", source, lineno)
    if "rectrain_manifest" not in obj:
        return _entry(obj, source, lineno)
    kind = str(obj.get("kind", "files"))
    if kind not in ("files", "packed"):
        raise DataError(f"unknown manifest kind '{kind}'.", "use a manifest written by rectrain.",
                        path=source, line=lineno)
    files, total = obj.get("files"), obj.get("bytes")
    return ManifestHeader(
        kind=kind,
        files=files if isinstance(files, int) else None,
        bytes=total if isinstance(total, int) else None,
        shards=[_entry(s, source, lineno) for s in obj.get("shards", []) or []],
        dirs=[check_relpath(d, source, lineno) for d in obj.get("dirs", []) or []],
        shrink=obj.get("shrink") if isinstance(obj.get("shrink"), dict) else None,
    )


def read_header(path: Path) -> ManifestHeader:
    """The first line of a manifest on disk, read alone (a packed manifest names its shards
    there): no need to read ten million entries to learn the kind."""
    with open(path, encoding="utf-8") as fh:
        parsed = parse_line(fh.readline(), str(path), 1)
    return parsed if isinstance(parsed, ManifestHeader) else ManifestHeader()


def _twice(path: str, first: int, source: str, lineno: int) -> DataError:
    return _damaged(f"'{path}' is listed twice (first on line {first}).", source, lineno)


class ManifestFile:
    """A ``manifest.jsonl`` on disk, read as a stream in flat memory: every line is checked once
    when it is opened (JSON, fields, paths, nothing listed twice); :meth:`entries` then gives the
    entries sorted by path, as often as needed, and :meth:`shard_entries` those of one shard of a
    packed dataset. rectrain writes manifests sorted; one that is not (written by hand) is
    sorted on disk first (:class:`rectrain.storage.spool.SortedSpool`) into a temporary copy."""

    def __init__(self, path: Path, source: Optional[str] = None) -> None:
        self.path = Path(path)
        self.source = source or str(path)
        self.header = ManifestHeader()
        self.files = 0
        self.bytes = 0
        self.spans: Dict[str, Tuple[int, int]] = {}  # shard -> (first byte, end byte) of its lines
        self.counts: Dict[str, int] = {}  # shard -> files in it
        self._copy: Optional[Path] = None
        if not self._index():
            self._sort()

    @property
    def kind(self) -> str:
        return self.header.kind

    def _lines(self, start: int = 0, end: Optional[int] = None) -> Iterator[Tuple[int, int, str]]:
        """(line number or 0 when reading from an offset, byte offset, text) of the lines."""
        with open(self.path, "rb") as fh:
            fh.seek(start)
            pos, lineno = start, 0 if start else 1
            for raw in fh:
                if end is not None and pos >= end:
                    return
                yield lineno, pos, raw.decode("utf-8")
                pos += len(raw)
                lineno += 1 if lineno else 0

    def _index(self) -> bool:
        """Check every line, count, find each shard's lines; False when the entries are not sorted.
        (Run on every open of a manifest of up to ten million lines: the lines rectrain writes
        are matched by one pattern, the others parsed as JSON.)"""
        last = ""
        last_line = 0
        files = total = 0
        spans: Dict[str, List[int]] = {}
        counts: Dict[str, int] = {}
        match, source = _CANONICAL.match, self.source
        try:
            with open(self.path, "rb") as fh:
                pos = 0
                for lineno, raw in enumerate(fh, 1):
                    line = raw.decode("utf-8")
                    fast = match(line)
                    if fast is not None:
                        path, _, shard, size_text = fast.groups()
                        check_relpath(path, source, lineno)
                        size = int(size_text)
                    else:
                        parsed = parse_line(line, source, lineno)
                        if isinstance(parsed, ManifestHeader):
                            self.header = parsed
                        if not isinstance(parsed, ManifestEntry):
                            pos += len(raw)
                            continue
                        path, size, shard = parsed.path, parsed.size, parsed.shard
                    if path <= last and files:
                        if path == last:
                            raise _twice(path, last_line, source, lineno)
                        return False
                    last, last_line = path, lineno
                    files += 1
                    total += size
                    if shard is not None:
                        span = spans.get(shard)
                        if span is None:
                            spans[shard] = [pos, pos + len(raw)]
                            counts[shard] = 1
                        else:
                            span[1] = pos + len(raw)
                            counts[shard] += 1
                    pos += len(raw)
        except UnicodeDecodeError as exc:
            raise _damaged(f"not UTF-8 ({exc}).", self.source, 0) from exc
        self.files, self.bytes, self.counts = files, total, counts
        self.spans = {name: (span[0], span[1]) for name, span in spans.items()}
        return True

    def _sort(self) -> None:
        with SortedSpool() as spool:
            for lineno, _, line in self._lines():
                parsed = parse_line(line, self.source, lineno)
                if isinstance(parsed, ManifestEntry):
                    spool.add((parsed.path, parsed.size, parsed.sha256, parsed.shard, lineno))
            folder = Path(tempfile.mkdtemp(prefix="rectrain-manifest-"))
            self._copy = folder / MANIFEST_NAME
            previous: Optional[Sequence[Any]] = None
            with open_stream(self._copy, "w") as out:  # a private temporary copy
                out.write(header_line(self.header.kind, spool.count, 0, self.header.shards, self.header.dirs,
                                      self.header.shrink))
                for rec in spool:
                    if previous is not None and rec[0] == previous[0]:
                        first, second = sorted((previous[4], rec[4]))
                        raise _twice(rec[0], first, self.source, second)
                    out.write(entry_line(ManifestEntry(rec[0], rec[1], rec[2], rec[3])))
                    previous = rec
        header = self.header
        self.path = self._copy
        self._index()
        self.header = header

    def entries(self) -> Iterator[ManifestEntry]:
        for lineno, _, line in self._lines():
            parsed = parse_line(line, self.source, lineno)
            if isinstance(parsed, ManifestEntry):
                yield parsed

    def shard_entries(self, shard: str, skip: int = 0) -> Iterator[ManifestEntry]:
        """The entries of one shard, in order, read from its lines only (checked when opened),
        after the first ``skip``."""
        if shard not in self.spans:
            return
        yield from read_shard_entries(self.path, self.spans[shard], shard, skip)

    def close(self) -> None:
        if self._copy is not None:
            remove_tree(self._copy.parent, ignore_errors=True)
            self._copy = None

    def __enter__(self) -> ManifestFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_shard_entries(path: Path, span: Tuple[int, int], shard: str,
                       skip: int = 0) -> Iterator[ManifestEntry]:
    """The entries of ``shard`` in the byte range ``span`` of a checked manifest, after the first
    ``skip`` (lines written as rectrain writes them are skipped without being parsed)."""
    for rel, size, sha in shard_records(path, span, shard, skip):
        yield ManifestEntry(rel, size, sha, shard)


def shard_records(path: Path, span: Tuple[int, int], shard: str,
                  skip: int = 0) -> Iterator[Tuple[str, int, str]]:
    """:func:`read_shard_entries` as ``(path, size, sha256)`` tuples (the unpacker reads one per
    file: a tuple costs a tenth of an entry object). The manifest was checked when opened
    (:class:`ManifestFile`): paths, sizes and digests are not checked again here."""
    token = ('"shard": ' + json.dumps(shard, ensure_ascii=False)).encode("utf-8")
    match, want = _CANONICAL_BYTES.match, shard.encode("utf-8")
    start, end = span
    with open(path, "rb") as fh:
        fh.seek(start)
        pos = start
        for raw in fh:
            if pos >= end:
                return
            pos += len(raw)
            if skip and token in raw:
                skip -= 1
                continue
            fast = match(raw)
            if fast is not None:
                rel, sha, in_shard, size = fast.groups()
                if in_shard == want:
                    yield rel.decode("utf-8"), int(size), sha.decode("ascii")
                continue
            obj = json.loads(raw)
            if obj.get("shard") != shard or "rectrain_manifest" in obj:
                continue
            if skip:
                skip -= 1
                continue
            yield obj["path"], obj["size"], obj["sha256"].lower()


def write_manifest(path: Path, header: str, entries: Iterable[ManifestEntry]) -> None:
    """Write a manifest atomically: ``header`` (:func:`header_line`), then the entries as given
    (sorted by the caller)."""
    with atomic_open(path, "w") as fh:
        fh.write(header)
        fh.writelines(entry_line(e) for e in entries)


def _damaged(message: str, source: str, lineno: int) -> DataError:
    return DataError(message, "push the dataset again to rewrite the manifest.", path=source, line=lineno)


def _entry(obj: object, source: str, lineno: int) -> ManifestEntry:
    if not isinstance(obj, dict):
        raise _damaged("expected a JSON object with path, size and sha256.", source, lineno)
    path, size, sha = obj.get("path"), obj.get("size"), obj.get("sha256")
    if (
        not isinstance(path, str)
        or not isinstance(size, int)
        or size < 0
        or not isinstance(sha, str)
        or not _SHA256.match(sha.lower())
    ):
        need = "each line needs 'path' (text), 'size' (bytes, >= 0) and 'sha256' (64 hex digits)."
        raise _damaged(need, source, lineno)
    shard = obj.get("shard")
    return ManifestEntry(
        check_relpath(path, source, lineno), size, sha.lower(), str(shard) if shard is not None else None
    )


def check_relpath(rel: str, source: str = "", line: Optional[int] = None) -> str:
    """``rel`` if it is a plain relative POSIX path that stays inside its folder, else DataError.
    Refuses absolute paths, drive letters, ``..``, empty and ``.`` components and NUL."""
    if not isinstance(rel, str):
        rel = str(rel)
    probe = "/" + rel + "/"  # an empty, "." or ".." component shows as "//", "/./" or "/../"
    bad = (
        not rel
        or rel[0] == "/"
        or "\x00" in rel
        or "//" in probe
        or "/./" in probe
        or "/../" in probe
        or (rel[1:2] == ":" and _DRIVE.match(rel) is not None)
        or (sys.platform == "win32" and "\\" in rel)
    )
    if bad:
        raise DataError(
            f"'{rel}' would land outside the destination folder (absolute path, '..' or "
            "empty component); refused.",
            "remove or rename that object/entry; rectrain only writes inside the destination.",
            path=source or None,
            line=line,
        )
    return rel


def file_digests(path: Path) -> Tuple[str, str, int]:
    """(sha256 hex, md5 hex, size) of a file, read once."""
    sha = hashlib.sha256()
    md5 = hashlib.md5()  # noqa: S324 - compared with S3 ETags, not for security
    size = 0
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(CHUNK)
            if not chunk:
                break
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), md5.hexdigest(), size


def local_files(root: Path, *, skip_top: Iterable[str] = (), run: int = RUN) -> SortedSpool:
    """``(relative POSIX path, size)`` of every regular file under ``root`` (files reached
    through a link count; folders reached through a link are not entered, as ``os.walk``),
    sorted by path, skipping rectrain's temporary download names and the top-level names in
    ``skip_top``. A named pipe, device or socket in the folder is refused (never read: it could
    wait forever), not skipped."""
    skip = set(skip_top)
    spool = SortedSpool(run)
    stack: List[Tuple[str, str]] = [(str(root), "")]
    while stack:
        folder, rel_folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                rel = rel_folder + entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, rel + "/"))
                    continue
                if entry.name.endswith(PART_SUFFIX) or (not rel_folder and entry.name in skip):
                    continue
                try:
                    if not entry.is_file():
                        refuse_special(entry.path, what="file in the folder")
                        continue
                    size = entry.stat().st_size
                except OSError:  # a link to nothing, or gone meanwhile
                    continue
                spool.add((rel, size))
                spool.size_total += size
    return spool


def empty_dirs(root: Path) -> List[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        if not dirnames and not filenames and Path(dirpath) != Path(root):
            out.append(Path(dirpath).relative_to(root).as_posix())
    return sorted(out)
