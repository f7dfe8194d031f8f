"""Packed datasets, the local format: many small files in a few tar shards plus ``manifest.jsonl``.

A million 5 KB images are a million S3 requests; packed, they are a few dozen 128 MB
objects that move at the network's speed. ``shard-00000.tar, shard-00001.tar, ...`` are
plain POSIX (PAX, UTF-8 names) tar files anyone can open; the manifest lists every original
file (path, size, sha256, shard) and every shard (size, sha256).

Here: :func:`pack_dataset`, which streams: files are packed in path order (the manifest's
order, so that unpacking matches members and entries without holding either), and each
file's manifest line is written as it is packed. Extraction is in :mod:`rectrain.storage.extract`;
unpacking a whole dataset, from S3 (``pull(..., unpack=True)``) or from local disk
(``unpack_dataset``), in :mod:`rectrain.storage.pull`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import shutil
import tarfile
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from rectrain.data.shrink import ShrinkResult, shrink_tree
from rectrain.errors import ConfigError, DataError, RectrainError, UserError
from rectrain.fsutil import format_size, sha256_file
from rectrain.logs import get_logger
from rectrain.outputs import (
    atomic_open,
    claim_output_dir,
    move,
    open_stream,
    remove_file,
    remove_quietly,
    remove_tree,
    tar_writer,
)
from rectrain.storage.manifest import (
    CHUNK,
    MANIFEST_NAME,
    PART_SUFFIX,
    ManifestEntry,
    empty_dirs,
    entry_line,
    header_line,
    local_files,
    read_header,
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


NO_TIME = 0  # the modification time written into shards (rectrain.storage.extract keeps any other)


def _tarinfo(rel: str, path: Path, size: int) -> tarfile.TarInfo:
    st = path.stat()
    info = tarfile.TarInfo(rel)
    info.size = size
    # no time recorded: a shard depends on its files' contents only (an unchanged dataset packs
    # into the same bytes after a copy or a checkout touched its files, so a push sends nothing),
    # and the unpacker sets none (one system call per file fewer)
    info.mtime = NO_TIME
    info.mode = st.st_mode & 0o777
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _tar_cost(rel: str, size: int) -> int:
    header = _TAR_BLOCK * (3 if len(rel.encode("utf-8")) > 99 or not rel.isascii() else 1)
    return header + (size + _TAR_BLOCK - 1) // _TAR_BLOCK * _TAR_BLOCK


def _write_shards(src: Path, out: Path, files: Iterable[Sequence[Any]], limit: int, entries: IO[str],
                  bar: TransferProgress) -> List[ManifestEntry]:
    """Write the files (sorted) into shards of about ``limit`` bytes, in order; each file's
    manifest line goes to ``entries`` as it is packed. Returns the shards' entries."""
    shards: List[ManifestEntry] = []
    tar: Optional[tarfile.TarFile] = None
    shard = ExitStack()  # the open shard (rectrain.outputs.tar_writer), closed when it is full
    tmp = out / "unused"
    current = 0
    try:
        for rel, size in files:
            cost = _tar_cost(rel, size)
            if tar is not None and current + cost > limit - 2 * _TAR_BLOCK * 2:
                shard.close()
                shards.append(_finish_shard(tmp, out, len(shards)))
                tar = None
            if tar is None:
                tmp = out / f".{SHARD_PATTERN.format(len(shards))}.{secrets.token_hex(4)}{PART_SUFFIX}"
                shard = ExitStack()
                tar = shard.enter_context(tar_writer(tmp, "w", format=tarfile.PAX_FORMAT, encoding="utf-8"))
                current = 0
            path = src / rel
            with open(path, "rb") as fh:
                reader = _HashingReader(fh)
                tar.addfile(_tarinfo(rel, path, size), reader)
            tar.members.clear()  # type: ignore[attr-defined]  # TarFile keeps every member written
            if reader.count != size:
                raise DataError("changed while it was being packed.",
                                "pack again when nothing writes to the dataset.", path=str(path))
            name = SHARD_PATTERN.format(len(shards))
            entries.write(entry_line(ManifestEntry(rel, size, reader.sha.hexdigest(), name)))
            bar.advance(size)
            current += cost
        if tar is not None:
            shard.close()
            shards.append(_finish_shard(tmp, out, len(shards)))
            tar = None
    except BaseException:
        shard.close()
        remove_quietly(tmp)
        raise
    return shards


def _finish_shard(tmp: Path, out: Path, index: int) -> ManifestEntry:
    name = SHARD_PATTERN.format(index)
    sha, size = sha256_file(tmp), tmp.stat().st_size
    move(tmp, out / name)
    return ManifestEntry(name, size, sha)


def claim_pack_dir(out: Path, src: Path) -> None:
    """``data pack -o OUT``: a new folder, or one holding a packed dataset's manifest (a pack
    rectrain wrote, replaced whole); never a manifest.jsonl of something else. The packed folder
    itself stays exact (shards and manifest, no marker)."""
    claim_output_dir(out, command="data pack", writes=[], inputs=[("dataset folder", src)], create=False)
    old = out / MANIFEST_NAME
    if old.exists() or old.is_symlink():
        try:
            ours = read_header(old).kind == "packed"  # the header line alone: flat memory
        except (OSError, ValueError, RectrainError):
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
    with local_files(src, skip_top={MANIFEST_NAME}) as files:
        if not files.count:
            raise DataError("no files to pack.", "check the dataset folder.", path=str(src))
        out.mkdir(parents=True, exist_ok=True)
        remove_file(out / MANIFEST_NAME)  # an old manifest must not vouch for half-written shards
        with tempfile.TemporaryDirectory(prefix="rectrain-pack-") as tmp:
            entries_path = Path(tmp) / "entries.jsonl"
            with open_stream(entries_path, "w") as entries, TransferProgress(
                    f"pack {src.name}", files.count, files.size_total, progress) as bar:
                shards = _write_shards(src, out, files, limit, entries, bar)
            keep = {s.path for s in shards}
            for stale in out.iterdir():
                if _SHARD_RE.match(stale.name) and stale.name not in keep:
                    remove_file(stale)
            total = files.size_total
            header = header_line("packed", files.count, total, shards, empty_dirs(src), shrink)
            with atomic_open(out / MANIFEST_NAME, "w") as fh, open(entries_path, encoding="utf-8") as body:
                fh.write(header)
                shutil.copyfileobj(body, fh, 1 << 20)
        count = files.count
    result = PackResult(
        str(out),
        str(out / MANIFEST_NAME),
        [s.path for s in shards],
        count,
        total,
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


def shard_extracted(dst: Path, entries: Iterable[ManifestEntry]) -> bool:
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


__all__ = [
    "SHARD_PATTERN",
    "PackResult",
    "parse_size",
    "pack_dataset",
    "shard_extracted",
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
