"""A checkpoint checker that is not rectrain: plain boto3 (or a plain folder), its own sha256.

It never imports rectrain (tests/faults/test_oracle.py fails if it does): what it expects
comes from docs/checkpoints.md, the contract, not from the code under test. Everything it
knows about the layout is in the LAYOUT block below; when the contract changes (issue 22 may
make each checkpoint's bytes go up once), change the doc and that block together.

``check_s3(client, "s3://bucket/prefix")`` (or ``check_dir(path)``) returns a :class:`Report`:
every checkpoint folder with whether all the files its marker lists are there with the size
and sha256 the marker gives (computed here), every pointer and whether it names a verified
folder, the newest verified step, and the anomalies: states that must never be visible
(a marker beside missing or different files, a pointer to a folder that is not verified).
A folder without a marker is incomplete, not an anomaly: an upload cut short, or a deletion
(marker first) cut short.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

# --- LAYOUT: docs/checkpoints.md, "Snapshots: immutable folders, completion marker, pointers" ---
# Under a checkpoint prefix P (``--checkpoint-s3 P``; ``RUN_DIR/checkpoints/snapshots`` locally;
# ``<CheckpointConfig.S3Uri>/snapshots`` under SageMaker's own sync):
#   P/s<8-digit step>-<name>-<6 hex>/       one folder per checkpoint, never rewritten
#   P/s.../_COMPLETE.json                   written last: name, global_step, run_id,
#                                           files: {file name: {size, sha256}}
#   P/<name>.json                           the pointer: "folder" names the current folder
# Names: latest and iter_epoch_N are epoch ends (what --resume continues from);
# best_accuracy and best_of_run are never resumed from. Run files (metrics.jsonl,
# run-state.json, ...) sit beside them and are not checkpoints.
FOLDER_RE = re.compile(r"^s(?P<step>\d{8})-(?P<name>[A-Za-z0-9_]+)-(?P<id>[0-9a-f]{6})$")
MARKER = "_COMPLETE.json"
POINTER_SUFFIX = ".json"
POINTER_FOLDER_KEY = "folder"
MARKER_FILES_KEY = "files"
MARKER_STEP_KEY = "global_step"


def is_resume_point(name: str) -> bool:
    """A checkpoint an interrupted run continues from (an epoch end)."""
    return name == "latest" or re.fullmatch(r"iter_epoch_\d+", name) is not None
# --- end of LAYOUT ------------------------------------------------------------------------


@dataclass
class Folder:
    folder: str  # s00000040-latest-3fa2c1
    name: str
    step: int
    has_marker: bool = False
    verified: bool = False
    run_id: Optional[str] = None
    problems: List[str] = field(default_factory=list)  # why it is not verified


@dataclass
class Pointer:
    name: str
    folder: Optional[str]
    step: Optional[int]
    valid: bool = False
    problem: str = ""


@dataclass
class Report:
    prefix: str
    folders: Dict[str, Folder] = field(default_factory=dict)
    pointers: Dict[str, Pointer] = field(default_factory=dict)
    anomalies: List[str] = field(default_factory=list)

    def verified(self, name: Optional[str] = None, resume_points: bool = False) -> List[Folder]:
        """Verified folders (of ``name``, or resume points only), newest step first."""
        out = [f for f in self.folders.values() if f.verified and (name is None or f.name == name)
               and (not resume_points or is_resume_point(f.name))]
        return sorted(out, key=lambda f: f.step, reverse=True)

    def newest_resume_step(self) -> int:
        """The step of the newest verified epoch-end checkpoint (0: none)."""
        found = self.verified(resume_points=True)
        return found[0].step if found else 0

    def pointer_step(self, name: str) -> Optional[int]:
        """The step a valid pointer ``name`` names (None: no valid pointer)."""
        pointer = self.pointers.get(name)
        return pointer.step if pointer is not None and pointer.valid else None

    def summary(self) -> str:
        lines = [f"{self.prefix}:"]
        for f in sorted(self.folders.values(), key=lambda f: (f.step, f.name)):
            state = "verified" if f.verified else ("; ".join(f.problems) or "incomplete")
            lines.append(f"  {f.folder}: {state}")
        for p in sorted(self.pointers.values(), key=lambda p: p.name):
            lines.append(f"  {p.name}.json -> {p.folder}: {'valid' if p.valid else p.problem}")
        lines += [f"  ANOMALY {a}" for a in self.anomalies]
        return "\n".join(lines)


class _S3Store:
    """The objects under one prefix (keys relative to it)."""

    def __init__(self, client: Any, uri: str, cache: Dict[Tuple[str, str, int], str]) -> None:
        if not uri.startswith("s3://"):
            raise ValueError(f"not an s3:// address: {uri}")
        self.bucket, _, prefix = uri[5:].partition("/")
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client
        self.cache = cache
        self.etags: Dict[str, str] = {}

    def sizes(self) -> Dict[str, int]:
        out: Dict[str, int] = {}
        token: Optional[str] = None
        while True:
            kwargs: Dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = self.client.list_objects_v2(**kwargs)
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(self.prefix):]
                out[rel] = int(obj["Size"])
                self.etags[rel] = str(obj.get("ETag", ""))
            if not page.get("IsTruncated"):
                return out
            token = page.get("NextContinuationToken")

    def read(self, rel: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self.prefix + rel)["Body"].read()

    def sha256(self, rel: str, size: int) -> str:
        # objects never change under one ETag and size: each is hashed once per checker
        ident = (self.prefix + rel, self.etags.get(rel, ""), size)
        if ident not in self.cache:
            body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + rel)["Body"]
            digest = hashlib.sha256()
            for chunk in iter(lambda: body.read(1 << 20), b""):
                digest.update(chunk)
            self.cache[ident] = digest.hexdigest()
        return self.cache[ident]


class _DirStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def sizes(self) -> Dict[str, int]:
        if not self.root.is_dir():
            return {}
        return {p.relative_to(self.root).as_posix(): p.stat().st_size
                for p in self.root.rglob("*") if p.is_file()}

    def read(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()

    def sha256(self, rel: str, size: int) -> str:
        digest = hashlib.sha256()
        with open(self.root / rel, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()


class Checker:
    """Keeps the sha256 of objects already hashed (by key, ETag and size) between checks."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._cache: Dict[Tuple[str, str, int], str] = {}

    def check(self, uri: str) -> Report:
        return _check(_S3Store(self.client, uri, self._cache), uri)


def check_s3(client: Any, uri: str) -> Report:
    return Checker(client).check(uri)


def check_dir(path: Path) -> Report:
    return _check(_DirStore(Path(path)), str(path))


def _json(store: Any, rel: str) -> Optional[dict]:
    try:
        value = json.loads(store.read(rel).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _folders(sizes: Dict[str, int]) -> Iterator[Tuple[str, Dict[str, int]]]:
    grouped: Dict[str, Dict[str, int]] = {}
    for rel, size in sizes.items():
        top, sep, rest = rel.partition("/")
        if sep and FOLDER_RE.match(top):
            grouped.setdefault(top, {})[rest] = size
    yield from sorted(grouped.items())


def _verify_folder(store: Any, folder: Folder, files: Dict[str, int], report: Report) -> None:
    marker = _json(store, f"{folder.folder}/{MARKER}")
    if marker is None:
        folder.problems.append("marker unreadable")
        report.anomalies.append(f"{folder.folder}: {MARKER} is not a JSON object")
        return
    folder.run_id = marker.get("run_id")
    listed = marker.get(MARKER_FILES_KEY)
    if not isinstance(listed, dict) or not listed:
        folder.problems.append("marker lists no files")
    else:
        for fname, want in sorted(listed.items()):
            if fname not in files:
                folder.problems.append(f"{fname} missing")
            elif not isinstance(want, dict) or files[fname] != want.get("size"):
                folder.problems.append(f"{fname} size {files[fname]} != {want}")
            elif store.sha256(f"{folder.folder}/{fname}", files[fname]) != want.get("sha256"):
                folder.problems.append(f"{fname} sha256 differs")
    if marker.get(MARKER_STEP_KEY) != folder.step or marker.get("name") != folder.name:
        folder.problems.append(f"marker says {marker.get('name')} step {marker.get(MARKER_STEP_KEY)}")
    folder.verified = not folder.problems
    if not folder.verified:
        report.anomalies.append(f"{folder.folder}: marker present but {'; '.join(folder.problems)}")


def _check(store: Any, prefix: str) -> Report:
    report = Report(prefix)
    sizes = store.sizes()
    for name, files in _folders(sizes):
        m = FOLDER_RE.match(name)
        assert m is not None
        folder = Folder(name, m.group("name"), int(m.group("step")))
        report.folders[name] = folder
        if MARKER not in files:
            folder.problems.append(f"no {MARKER}")
            continue
        folder.has_marker = True
        _verify_folder(store, folder, files, report)
    names = {f.name for f in report.folders.values()}
    for rel in sorted(sizes):
        if "/" in rel or not rel.endswith(POINTER_SUFFIX):
            continue
        name = rel[:-len(POINTER_SUFFIX)]
        data = _json(store, rel)
        if data is None or POINTER_FOLDER_KEY not in data:
            if name in names or is_resume_point(name):
                report.anomalies.append(f"{rel}: not a pointer (no {POINTER_FOLDER_KEY!r})")
            continue
        _check_pointer(report, name, data)
    return report


def _check_pointer(report: Report, name: str, data: dict) -> None:
    target = data.get(POINTER_FOLDER_KEY)
    pointer = Pointer(name, target if isinstance(target, str) else None, data.get(MARKER_STEP_KEY))
    report.pointers[name] = pointer
    folder = report.folders.get(pointer.folder or "")
    if folder is None:
        pointer.problem = f"points at {target!r}, which is not there"
    elif not folder.verified:
        pointer.problem = f"points at {target}, not verified ({'; '.join(folder.problems)})"
    elif folder.name != name:
        pointer.problem = f"points at {target}, a folder of {folder.name}"
    elif pointer.step != folder.step:
        pointer.problem = f"says step {pointer.step}, its folder is step {folder.step}"
    else:
        pointer.valid = True
        return
    report.anomalies.append(f"{name}{POINTER_SUFFIX}: {pointer.problem}")
