"""Packed datasets: many small files in a few tar shards plus ``manifest.jsonl``.

A million 5 KB images are a million S3 requests; packed, they are a few dozen 128 MB
objects that move at the network's speed. ``shard-00000.tar, shard-00001.tar, ...`` are
plain POSIX (PAX, UTF-8 names) tar files anyone can open; the manifest lists every original
file (path, size, sha256, shard) and every shard (size, sha256).

``pull(..., unpack=True)`` streams each shard from S3 straight into extraction, several
shards at once, and checks every file against the manifest as it lands: the result is
exactly the original tree.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import secrets
import tarfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Optional, Set

from rectrain.errors import ConfigError, DataError, IntegrityError, RectrainError, StorageError
from rectrain.fsutil import remove_quietly, write_text_atomic
from rectrain.logs import get_logger
from rectrain.storage.manifest import (
    CHUNK,
    MANIFEST_NAME,
    PART_SUFFIX,
    Manifest,
    ManifestEntry,
    check_relpath,
    empty_dirs,
    file_digests,
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
    files = [(rel, path) for rel, path in iter_files(src) if rel != MANIFEST_NAME]
    if not files:
        raise DataError("no files to pack.", "check the dataset folder.", path=str(src))
    out.mkdir(parents=True, exist_ok=True)
    try:
        (out / MANIFEST_NAME).unlink()  # an old manifest must not vouch for half-written shards
    except FileNotFoundError:
        pass

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
                with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
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
                sha, _, shard_bytes = file_digests(tmp)
                os.replace(tmp, out / name)
            except BaseException:
                remove_quietly(tmp)
                raise
            shards.append(ManifestEntry(name, shard_bytes, sha))
    keep = {s.path for s in shards}
    for stale in out.iterdir():
        if _SHARD_RE.match(stale.name) and stale.name not in keep:
            stale.unlink()
    manifest = Manifest(entries=entries, kind="packed", shards=shards, dirs=empty_dirs(src),
                        shrink=shrink)
    write_text_atomic(out / MANIFEST_NAME, manifest.to_jsonl())
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
        "packed %d files (%.1f MB) into %d shard(s) in %s", result.files, result.bytes / 1e6, len(shards), out
    )
    return result


# ----------------------------------------------------------------------------- extraction
class _Writer:
    """Writes verified files into ``dst`` on a few threads while the tar stream is read on the
    caller's thread (creating many small files is bound by file-system calls, which release the
    GIL). Folders are created and checked once each."""

    def __init__(self, dst: Path, threads: int = 4) -> None:
        self.dst = dst
        self.dst.mkdir(parents=True, exist_ok=True)
        self.dst_real = os.path.realpath(dst)
        self.checked: Dict[str, str] = {}
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="rectrain-unpack") if threads > 0 else None
        self.slots = threading.BoundedSemaphore(threads * 16)  # bounds the bytes held in memory
        self.futures: List[Future] = []

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

    def submit(self, data: bytes, target: Path, mtime: float, mode: int) -> None:
        if self.pool is None:
            self._write(data, target, mtime, mode)
            return
        self._raise_failed()
        self.slots.acquire()
        future = self.pool.submit(self._write, data, target, mtime, mode)
        future.add_done_callback(lambda _f: self.slots.release())
        self.futures.append(future)

    @staticmethod
    def _write(data: bytes, target: Path, mtime: float, mode: int) -> None:
        tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}{PART_SUFFIX}"
        try:
            with open(tmp, "wb") as out:
                out.write(data)
            _finish_file(tmp, target, mtime, mode)
        except BaseException:
            remove_quietly(tmp)
            raise

    def _raise_failed(self) -> None:
        if len(self.futures) > 256:
            self.futures = [f for f in self.futures if not f.done() or f.exception() is not None]
        for future in self.futures:
            if future.done() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]

    def close(self) -> None:
        if self.pool is None:
            return
        self.pool.shutdown(wait=True)
        for future in self.futures:
            exc = future.exception()
            if exc is not None:
                if isinstance(exc, OSError):
                    raise StorageError(
                        f"Cannot write into {self.dst}: {exc}.", "check free disk space and permissions."
                    ) from exc
                raise exc


def _finish_file(tmp: Path, target: Path, mtime: float, mode: int) -> None:
    if mode and (mode & 0o777) != 0o644:
        os.chmod(tmp, (mode & 0o777) | 0o600)
    os.utime(tmp, (mtime, mtime))
    os.replace(tmp, target)


IN_MEMORY = 4 * 1024 * 1024  # members up to this size are read, checked and handed to a writer thread


def extract_shard(
    stream: IO[bytes],
    shard: ManifestEntry,
    expected: Dict[str, ManifestEntry],
    dst: Path,
    *,
    on_bytes: Optional[Callable[[int], None]] = None,
    writers: int = 0,
) -> Set[str]:
    """Extract one shard read from ``stream`` (a file or an S3 body) into ``dst``. Each member must
    be a regular file the manifest lists for this shard; each is checked (size, sha256) before it
    is written under a temporary name and renamed. Returns the paths written."""
    reader = _HashingReader(stream, on_bytes)
    written: Set[str] = set()
    where = shard.path
    writer = _Writer(dst, writers)
    try:
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
                    target = writer.target(rel, where)
                    fileobj = tar.extractfile(member)
                    assert fileobj is not None
                    if member.size <= IN_MEMORY:
                        data = fileobj.read()
                        _verify(len(data), hashlib.sha256(data).hexdigest(), entry, f"{where}:{rel}")
                        writer.submit(data, target, member.mtime, member.mode)
                    else:
                        _write_verified(fileobj, target, entry, f"{where}:{rel}", member.mtime, member.mode)
                    written.add(rel)
                reader.drain()
        except tarfile.TarError as exc:
            raise IntegrityError(
                f"{where} is not a readable tar file ({exc}).", "pack and upload the dataset again."
            ) from exc
    finally:
        writer.close()
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
        with open(tmp, "wb") as out:
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


def _shard_done(dst: Path, entries: List[ManifestEntry]) -> bool:
    for entry in entries:
        path = dst / entry.path
        try:
            if path.stat().st_size != entry.size:
                return False
        except OSError:
            return False
        if file_digests(path)[0] != entry.sha256:
            return False
    return True


def _by_shard(manifest: Manifest) -> Dict[str, List[ManifestEntry]]:
    groups: Dict[str, List[ManifestEntry]] = {s.path: [] for s in manifest.shards}
    for entry in manifest.entries:
        if entry.shard not in groups:
            raise IntegrityError(
                f"the manifest lists {entry.path} in shard '{entry.shard}', which it does not name.",
                "pack the dataset again with rectrain data pack.",
            )
        groups[entry.shard].append(entry)  # type: ignore[index]
    return groups


def _finish_tree(dst: Path, manifest: Manifest, delete: bool) -> int:
    for rel in manifest.dirs:
        (dst / check_relpath(rel)).mkdir(parents=True, exist_ok=True)
    deleted = 0
    if delete:
        listed = {e.path for e in manifest.entries}
        for rel, path in iter_files(dst):
            if rel not in listed:
                path.unlink()
                deleted += 1
    return deleted


def unpack_dataset(
    src_dir: Any, dst_dir: Any, *, workers: int = 4, delete: bool = False, progress: bool = True
) -> Dict[str, Any]:
    """Extract a packed dataset (shards + manifest.jsonl in ``src_dir``) into ``dst_dir``, checking
    every file against the manifest. Shards whose files are all already there are skipped."""
    from rectrain.storage.transfer import run_parallel

    started = time.monotonic()
    src = Path(src_dir).expanduser()
    dst = Path(dst_dir).expanduser()
    if not (src / MANIFEST_NAME).is_file():
        raise DataError(
            f"no {MANIFEST_NAME} here, so this is not a packed dataset.",
            "give the folder made by `rectrain data pack`.",
            path=str(src),
        )
    manifest = Manifest.read(src / MANIFEST_NAME)
    if manifest.kind != "packed":
        raise DataError(
            "this manifest is not a packed dataset's.",
            "give the folder made by `rectrain data pack`.",
            path=str(src / MANIFEST_NAME),
        )
    groups = _by_shard(manifest)
    dst.mkdir(parents=True, exist_ok=True)
    shards = {s.path: s for s in manifest.shards}
    todo = [name for name, entries in groups.items() if not _shard_done(dst, entries)]
    with TransferProgress(
        f"unpack {src.name}", len(todo), sum(shards[n].size for n in todo), progress
    ) as bar:

        def work(name: str) -> None:
            path = src / name
            if not path.is_file():
                raise DataError(
                    "shard missing.", "copy or download the whole packed dataset.", path=str(path)
                )
            with open(path, "rb") as fh:
                extract_shard(
                    fh,
                    shards[name],
                    {e.path: e for e in groups[name]},
                    dst,
                    on_bytes=lambda n: bar.advance(n, 0),
                )
            bar.advance(0, 1)

        run_parallel(todo, work, workers)
    deleted = _finish_tree(dst, manifest, delete)
    return {
        "dst": str(dst),
        "files": manifest.files,
        "bytes": manifest.total_bytes,
        "shards": len(shards),
        "shards_extracted": len(todo),
        "deleted": deleted,
        "seconds": time.monotonic() - started,
    }


def pull_unpack(
    client: Any,
    uri: Any,
    remote: Dict[str, Any],
    manifest: Manifest,
    dst: Path,
    *,
    workers: int,
    delete: bool,
    dry_run: bool,
    progress: bool,
    started: float,
    result: Any,
) -> Any:
    """``pull --unpack`` of a packed dataset: each shard streams from S3 into extraction, several
    shards at once; the result is verified file by file against the manifest."""
    from rectrain.storage.s3 import translate_error
    from rectrain.storage.transfer import _partial, run_parallel

    result.packed = True
    groups = _by_shard(manifest)
    shards = {s.path: s for s in manifest.shards}
    missing = [name for name in shards if name not in remote]
    if missing:
        raise IntegrityError(
            f"The packed dataset at {uri} is incomplete: {', '.join(missing[:3])} "
            f"{'is' if len(missing) == 1 else 'are'} not on S3.",
            "push the packed dataset again; the rerun uploads only what is missing.",
        )
    todo = [name for name, entries in groups.items() if not (dst.is_dir() and _shard_done(dst, entries))]
    result.files_total = manifest.files
    result.bytes_total = manifest.total_bytes
    result.skipped = sum(len(groups[n]) for n in groups if n not in todo)
    result.planned = [str(uri.join(n)) for n in todo]
    listed = {e.path for e in manifest.entries}
    if delete and dst.is_dir():
        result.deletions = [str(dst / rel) for rel, _ in iter_files(dst) if rel not in listed]
    if dry_run:
        result.transferred = sum(len(groups[n]) for n in todo)
        result.bytes_transferred = sum(shards[n].size for n in todo)
        result.seconds = time.monotonic() - started
        return result
    dst.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    writers = 0  # measured: writing on the reading thread beats handing small files to threads
    with TransferProgress(
        f"pull --unpack {uri}", sum(len(groups[n]) for n in todo), sum(shards[n].size for n in todo), progress
    ) as bar:

        def work(name: str) -> None:
            key = remote[name].key
            try:
                body = client.get_object(Bucket=uri.bucket, Key=key)["Body"]
            except Exception as exc:
                raise translate_error(exc, "s3:GetObject", str(uri.join(name))) from exc
            try:
                written = extract_shard(
                    body,
                    shards[name],
                    {e.path: e for e in groups[name]},
                    dst,
                    on_bytes=lambda n: bar.advance(n, 0),
                    writers=writers,
                )
            except RectrainError:
                raise
            except Exception as exc:  # a broken connection in the middle of the stream
                raise translate_error(exc, "s3:GetObject", str(uri.join(name))) from exc
            bar.advance(0, len(written))
            if len(written) != len(groups[name]):
                absent = sorted({e.path for e in groups[name]} - written)
                raise IntegrityError(
                    f"{uri.join(name)} lacks {len(absent)} file(s) its manifest lists (e.g. {absent[0]}).",
                    "pack and push the dataset again.",
                )
            with lock:
                result.transferred += len(written)
                result.bytes_transferred += shards[name].size

        try:
            run_parallel(todo, work, workers)
        except RectrainError as exc:
            raise _partial(exc, result, "pull --unpack", sum(len(groups[n]) for n in todo)) from exc.__cause__
        except OSError as exc:
            raise StorageError(
                f"Cannot write into {dst}: {exc}.", "check free disk space and permissions."
            ) from exc
    result.deleted = _finish_tree(dst, manifest, delete)
    result.seconds = time.monotonic() - started
    log.debug("%s", result.summary())
    return result
