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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from rectrain.errors import DataError
from rectrain.outputs import refuse_special

MANIFEST_NAME = "manifest.jsonl"
PART_SUFFIX = ".rectrain-part"  # temporary download names; never uploaded, never trusted
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
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
        header: Dict[str, object] = {
            "rectrain_manifest": 1,
            "kind": self.kind,
            "files": self.files,
            "bytes": self.total_bytes,
        }
        if self.kind == "packed":
            header["shards"] = [s.as_dict() for s in self.shards]
        if self.dirs:
            header["dirs"] = sorted(self.dirs)
        if self.shrink:
            header["shrink"] = self.shrink
        lines = [json.dumps(header, ensure_ascii=False, sort_keys=True)]
        for entry in sorted(self.entries, key=lambda e: e.path):
            lines.append(json.dumps(entry.as_dict(), ensure_ascii=False, sort_keys=True))
        return "\n".join(lines) + "\n"

    def to_bytes(self) -> bytes:
        return self.to_jsonl().encode("utf-8")

    @classmethod
    def parse(cls, text: str, source: str = MANIFEST_NAME) -> Manifest:
        kind = "files"
        shards: List[ManifestEntry] = []
        dirs: List[str] = []
        shrink: Optional[Dict[str, object]] = None
        entries: List[ManifestEntry] = []
        seen: Dict[str, int] = {}
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
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
            if "rectrain_manifest" in obj:
                kind = str(obj.get("kind", "files"))
                if kind not in ("files", "packed"):
                    raise DataError(
                        f"unknown manifest kind '{kind}'.",
                        "use a manifest written by rectrain.",
                        path=source,
                        line=lineno,
                    )
                shards = [_entry(s, source, lineno) for s in obj.get("shards", []) or []]
                dirs = [check_relpath(d, source, lineno) for d in obj.get("dirs", []) or []]
                shrink = obj.get("shrink") if isinstance(obj.get("shrink"), dict) else None
                continue
            entry = _entry(obj, source, lineno)
            if entry.path in seen:
                first = seen[entry.path]
                raise _damaged(f"'{entry.path}' is listed twice (first on line {first}).", source, lineno)
            seen[entry.path] = lineno
            entries.append(entry)
        return cls(entries=entries, kind=kind, shards=shards, dirs=dirs, shrink=shrink)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        return cls.parse(Path(path).read_text(encoding="utf-8"), str(path))


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
    bad = (
        not rel
        or rel.startswith("/")
        or "\x00" in rel
        or re.match(r"^[A-Za-z]:", rel) is not None
        or (sys.platform == "win32" and "\\" in rel)
    )
    parts = rel.split("/")
    if not bad and any(p in ("", ".", "..") for p in parts):
        bad = True
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


def iter_files(root: Path) -> Iterator[Tuple[str, Path]]:
    """(relative POSIX path, path) of every regular file under ``root``, sorted, skipping
    rectrain's temporary download names."""
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(PART_SUFFIX):
                continue
            path = Path(dirpath) / name
            refuse_special(path, what="file in the folder")
            if not path.is_file():
                continue
            yield path.relative_to(root).as_posix(), path


def empty_dirs(root: Path) -> List[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        if not dirnames and not filenames and Path(dirpath) != Path(root):
            out.append(Path(dirpath).relative_to(root).as_posix())
    return sorted(out)
