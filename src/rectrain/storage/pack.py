"""Packed datasets, the local format: many small files in a few tar shards plus ``manifest.jsonl``.

A million 5 KB images are a million S3 requests; packed, they are a few dozen 128 MB
objects that move at the network's speed. ``shard-00000.tar, shard-00001.tar, ...`` are
plain POSIX (PAX, UTF-8 names) tar files anyone can open; the manifest lists every original
file (path, size, sha256, shard) and every shard (size, sha256).

Here: :func:`pack_dataset` and the shard reader (:func:`extract_shard`, which checks every file
against the manifest as it lands). Unpacking a whole dataset, from S3 (``pull(...,
unpack=True)``, several shards at once) or from local disk (``unpack_dataset``), is in
:mod:`rectrain.storage.pull`.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import secrets
import tarfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Optional, Set, Tuple, Union

from rectrain.data.shrink import ShrinkResult, shrink_tree
from rectrain.errors import ConfigError, DataError, IntegrityError, RectrainError, UserError
from rectrain.fsutil import format_size, sha256_file
from rectrain.logs import get_logger
from rectrain.outputs import (
    claim_output_dir,
    move,
    open_stream,
    remove_file,
    remove_quietly,
    remove_tree,
    tar_writer,
    write_text,
)
from rectrain.storage.manifest import (
    CHUNK,
    MANIFEST_NAME,
    PART_SUFFIX,
    Manifest,
    ManifestEntry,
    check_relpath,
    empty_dirs,
    iter_files,
)
from rectrain.storage.progress import TransferProgress

log = get_logger("storage.pack")

SHARD_PATTERN = "shard-{:05d}.tar"
_SHARD_RE = re.compile(r"^shard-\d{5,}\.tar$")
_TAR_BLOCK = 512


def parse_size(text: Any) -> int:
    """``"128MB"`` -> 128000000; accepts B, KB/MB/GB/TB (powers of 1000) and KiB/MiB/GiB/TiB."""
    if isinstance(text, int):
        value = text
    else:
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?I?B?)\s*", str(text).upper())
        if not match:
            raise ConfigError(f"--shard-size '{text}' is not a size.", "write it like 128MB, 1GB or 512MiB.")
        number, unit = float(match.group(1)), match.group(2).rstrip("B") or ""
        scale = {
            "": 1,
            "K": 1000,
            "M": 1000**2,
            "G": 1000**3,
            "T": 1000**4,
            "KI": 1024,
            "MI": 1024**2,
            "GI": 1024**3,
            "TI": 1024**4,
        }[unit]
        value = int(number * scale)
    if value < 1024:
        raise ConfigError(
            f"--shard-size {text} is too small.", "use at least 1KB; 128MB suits most datasets."
        )
    return value


@dataclass
class PackResult:
    out_dir: str
    manifest: str
    shards: List[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    shrink: Optional[Dict[str, Any]] = None  # data pack --max-height (rectrain.data.shrink)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


class _HashingReader:
    """A file-like reader that hashes what passes through it."""

    def __init__(self, raw: Any, on_bytes: Optional[Callable[[int], None]] = None) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.count = 0
        self.on_bytes = on_bytes

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n) if n is not None and n >= 0 else self.raw.read()
        if data:
            self.sha.update(data)
            self.count += len(data)
            if self.on_bytes is not None:
                self.on_bytes(len(data))
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def _tarinfo(rel: str, path: Path, size: int) -> tarfile.TarInfo:
    st = path.stat()
    info = tarfile.TarInfo(rel)
    info.size = size
    info.mtime = int(st.st_mtime)
    info.mode = st.st_mode & 0o777
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _tar_cost(rel: str, size: int) -> int:
    header = _TAR_BLOCK * (3 if len(rel.encode("utf-8")) > 99 or not rel.isascii() else 1)
    return header + (size + _TAR_BLOCK - 1) // _TAR_BLOCK * _TAR_BLOCK


def claim_pack_dir(out: Path, src: Path) -> None:
    """``data pack -o OUT``: a new folder, or one holding a packed dataset's manifest (a pack
    rectrain wrote, replaced whole); never a manifest.jsonl of something else. The packed folder
    itself stays exact (shards and manifest, no marker)."""
    claim_output_dir(out, command="data pack", writes=[], inputs=[("dataset folder", src)], create=False)
    old = out / MANIFEST_NAME
    if old.exists() or old.is_symlink():
        try:
            ours = Manifest.read(old).kind == "packed"
        except (OSError, RectrainError):
            ours = False
        if not ours:
            raise UserError(f"-o {out} already holds {MANIFEST_NAME}, which is not the manifest of a "
                            "packed dataset rectrain wrote: packing there would replace it.",
                            f"choose a new or empty folder, e.g. -o {out.parent / (out.name + '-packed')}.")


def pack_dataset(
    src_dir: Any, out_dir: Any, shard_size: Any = "128MB", *, progress: bool = True,
    shrink: Optional[Dict[str, Any]] = None,
) -> PackResult:
    """Pack every file under ``src_dir`` into tar shards of about ``shard_size`` in ``out_dir``,
    plus ``manifest.jsonl`` (written last). A file larger than a shard gets a shard of its own."""
    started = time.monotonic()
    src = Path(src_dir).expanduser().resolve()
    out = Path(out_dir).expanduser().resolve()
    limit = parse_size(shard_size)
    if not src.is_dir():
        raise DataError("folder not found.", "check the dataset folder to pack.", path=str(src))
    if out == src or src in out.parents:
        raise DataError(
            f"the output folder {out} is inside the dataset folder.",
            "choose an output folder outside the dataset, e.g. a sibling folder.",
            path=str(src),
        )
    claim_pack_dir(out, src)
    files = [(rel, path) for rel, path in iter_files(src) if rel != MANIFEST_NAME]
    if not files:
        raise DataError("no files to pack.", "check the dataset folder.", path=str(src))
    out.mkdir(parents=True, exist_ok=True)
    remove_file(out / MANIFEST_NAME)  # an old manifest must not vouch for half-written shards

    # group files into shards, in path order
    groups: List[List[tuple]] = [[]]
    current = 0
    for rel, path in files:
        size = path.stat().st_size
        cost = _tar_cost(rel, size)
        if groups[-1] and current + cost > limit - 2 * _TAR_BLOCK * 2:
            groups.append([])
            current = 0
        groups[-1].append((rel, path, size))
        current += cost

    entries: List[ManifestEntry] = []
    shards: List[ManifestEntry] = []
    total = sum(size for group in groups for _, _, size in group)
    with TransferProgress(f"pack {src.name}", len(files), total, progress) as bar:
        for index, group in enumerate(groups):
            name = SHARD_PATTERN.format(index)
            tmp = out / f".{name}.{secrets.token_hex(4)}{PART_SUFFIX}"
            try:
                with tar_writer(tmp, "w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
                    for rel, path, size in group:
                        with open(path, "rb") as fh:
                            reader = _HashingReader(fh)
                            tar.addfile(_tarinfo(rel, path, size), reader)
                        if reader.count != size:
                            raise DataError(
                                "changed while it was being packed.",
                                "pack again when nothing writes to the dataset.",
                                path=str(path),
                            )
                        entries.append(ManifestEntry(rel, size, reader.sha.hexdigest(), name))
                        bar.advance(size)
                sha, shard_bytes = sha256_file(tmp), tmp.stat().st_size
                move(tmp, out / name)
            except BaseException:
                remove_quietly(tmp)
                raise
            shards.append(ManifestEntry(name, shard_bytes, sha))
    keep = {s.path for s in shards}
    for stale in out.iterdir():
        if _SHARD_RE.match(stale.name) and stale.name not in keep:
            remove_file(stale)
    manifest = Manifest(entries=entries, kind="packed", shards=shards, dirs=empty_dirs(src),
                        shrink=shrink)
    write_text(out / MANIFEST_NAME, manifest.to_jsonl())
    result = PackResult(
        str(out),
        str(out / MANIFEST_NAME),
        [s.path for s in shards],
        len(entries),
        manifest.total_bytes,
        time.monotonic() - started,
        shrink,
    )
    log.info(
        "packed %d files (%s) into %d shard(s) in %s",
        result.files,
        format_size(result.bytes),
        len(shards),
        out,
    )
    return result


# ----------------------------------------------------------------------------- extraction
class _Targets:
    """Where the members of a shard go inside ``dst``: folders are created and checked once each,
    and a folder that resolves outside ``dst`` (through a link) is refused."""

    def __init__(self, dst: Path) -> None:
        self.dst = dst
        self.dst.mkdir(parents=True, exist_ok=True)
        self.dst_real = os.path.realpath(dst)
        self.checked: Dict[str, str] = {}

    def target(self, rel: str, where: str) -> Path:
        parent = posixpath.dirname(rel)
        if parent not in self.checked:
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
        return Path(self.checked[parent]) / posixpath.basename(rel)


def _write_file(data: bytes, target: Path, mtime: float, mode: int) -> None:
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}{PART_SUFFIX}"
    try:
        with open_stream(tmp) as out:
            out.write(data)
        _finish_file(tmp, target, mtime, mode)
    except BaseException:
        remove_quietly(tmp)
        raise


def _finish_file(tmp: Path, target: Path, mtime: float, mode: int) -> None:
    if mode and (mode & 0o777) != 0o644:
        os.chmod(tmp, (mode & 0o777) | 0o600)
    os.utime(tmp, (mtime, mtime))
    move(tmp, target)


IN_MEMORY = 4 * 1024 * 1024  # members up to this size are read and checked in memory, then written


def extract_shard(
    stream: IO[bytes],
    shard: ManifestEntry,
    expected: Dict[str, ManifestEntry],
    dst: Path,
    *,
    on_bytes: Optional[Callable[[int], None]] = None,
) -> Set[str]:
    """Extract one shard read from ``stream`` (a file or an S3 body) into ``dst``. Each member must
    be a regular file the manifest lists for this shard; each is checked (size, sha256) before it
    is written under a temporary name and renamed (on the reading thread: measured faster than
    handing small files to writer threads). Returns the paths written."""
    reader = _HashingReader(stream, on_bytes)
    written: Set[str] = set()
    where = shard.path
    targets = _Targets(dst)
    try:
        with tarfile.open(fileobj=reader, mode="r|", encoding="utf-8") as tar:  # type: ignore[call-overload]
            for member in tar:
                if member.isdir():
                    continue
                rel = member.name
                if not member.isfile():
                    raise IntegrityError(
                        f"{where} holds '{rel}', which is not a regular file; refused.",
                        "pack the dataset again with rectrain data pack.",
                    )
                entry = expected.get(rel)
                if entry is None:
                    raise IntegrityError(
                        f"{where} holds '{rel}', which its manifest does not list for it; refused.",
                        "pack the dataset again with rectrain data pack.",
                    )
                check_relpath(rel, where)
                target = targets.target(rel, where)
                fileobj = tar.extractfile(member)
                assert fileobj is not None
                if member.size <= IN_MEMORY:
                    data = fileobj.read()
                    _verify(len(data), hashlib.sha256(data).hexdigest(), entry, f"{where}:{rel}")
                    _write_file(data, target, member.mtime, member.mode)
                else:
                    _write_verified(fileobj, target, entry, f"{where}:{rel}", member.mtime, member.mode)
                written.add(rel)
            reader.drain()
    except tarfile.TarError as exc:
        raise IntegrityError(
            f"{where} is not a readable tar file ({exc}).", "pack and upload the dataset again."
        ) from exc
    if shard.sha256 and reader.sha.hexdigest() != shard.sha256:
        log.warning(
            "%s: the shard's sha256 differs from the manifest, but every file in it matched its own checksum",
            where,
        )
    return written


def _verify(size: int, sha: str, entry: ManifestEntry, where: str) -> None:
    if size != entry.size or sha != entry.sha256:
        raise IntegrityError(
            f"{where} does not match the manifest ({size} bytes, sha256 {sha[:16]}...; "
            f"expected {entry.size} bytes, {entry.sha256[:16]}...). The file was discarded.",
            "pack and upload the dataset again from the original copy.",
        )


def _write_verified(
    fileobj: Any, target: Path, entry: ManifestEntry, where: str, mtime: float, mode: int
) -> None:
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}{PART_SUFFIX}"
    sha = hashlib.sha256()
    size = 0
    try:
        with open_stream(tmp) as out:
            while True:
                chunk = fileobj.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                sha.update(chunk)
                size += len(chunk)
        _verify(size, sha.hexdigest(), entry, where)
        _finish_file(tmp, target, mtime, mode)
    except BaseException:
        remove_quietly(tmp)
        raise


def shard_extracted(dst: Path, entries: List[ManifestEntry]) -> bool:
    """Whether every file of a shard (``entries``) is already in ``dst``, checked by sha256."""
    for entry in entries:
        path = dst / entry.path
        try:
            if path.stat().st_size != entry.size:
                return False
        except OSError:
            return False
        if sha256_file(path) != entry.sha256:
            return False
    return True


def entries_by_shard(manifest: Manifest) -> Dict[str, List[ManifestEntry]]:
    """{shard name: the files it holds}, from a packed dataset's manifest."""
    groups: Dict[str, List[ManifestEntry]] = {s.path: [] for s in manifest.shards}
    for entry in manifest.entries:
        if entry.shard not in groups:
            raise IntegrityError(
                f"the manifest lists {entry.path} in shard '{entry.shard}', which it does not name.",
                "pack the dataset again with rectrain data pack.",
            )
        groups[entry.shard].append(entry)  # type: ignore[index]
    return groups


__all__ = [
    "SHARD_PATTERN",
    "PackResult",
    "parse_size",
    "pack_dataset",
    "extract_shard",
    "shard_extracted",
    "entries_by_shard",
]


def pack_shrunk_dataset(src_dir: Union[str, Path], out_dir: Union[str, Path], max_height: int,
                        shard_size: Any = "128MB", *,
                        progress: bool = True) -> Tuple[PackResult, ShrinkResult]:
    """``data pack --max-height``: shrink into a staging folder beside ``out_dir`` (hard links
    for what does not change), pack that, record the shrinking in the manifest's header
    (``shrink``), and remove the staging folder whatever happens."""
    src = Path(src_dir).expanduser().resolve()
    out = Path(out_dir).expanduser().resolve()
    if out == src or src in out.parents:
        raise DataError(f"the output folder {out} is inside the dataset folder.",
                        "choose an output folder outside the dataset, e.g. a sibling folder.",
                        path=str(src))
    claim_pack_dir(out, src)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.shrink-{secrets.token_hex(4)}"
    try:
        result = shrink_tree(src, staging, max_height)
        packed = pack_dataset(staging, out, shard_size, progress=progress, shrink=result.record())
    finally:
        remove_tree(staging, ignore_errors=True)
    return packed, result
