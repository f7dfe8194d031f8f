"""Push: upload a local folder to an S3 folder, concurrent, resumable and verified.

- Resumable: an object already there with the same size and checksum (ETag = MD5 of a
  single-part upload, else the ``sha256`` metadata) is skipped.
- Verified: every PUT carries the file's SHA-256, checked by the server
  (:func:`rectrain.storage.objects.put_object`).
- Datasets: ``manifest.jsonl`` is written LAST (and a stale one removed first), so a partial
  upload never looks finished. ``delete`` removes extra objects only when asked.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from rectrain.errors import DataError, IntegrityError, RectrainError
from rectrain.fsutil import sha256_file
from rectrain.logs import get_logger
from rectrain.storage.manifest import MANIFEST_NAME, Manifest, ManifestEntry, file_digests, iter_files
from rectrain.storage.objects import ObjectInfo, delete_keys, put_object, remote_files, write_probe
from rectrain.storage.parallel import run_parallel
from rectrain.storage.progress import TransferProgress
from rectrain.storage.result import TransferResult, note_partial
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import S3Service

log = get_logger("storage.push")

@dataclass
class _LocalFile:
    rel: str
    path: Path
    size: int = 0
    sha256: str = ""
    md5: str = ""
    upload: bool = True
    data: Optional[bytes] = None  # small files are read once: kept from the check to the upload


KEEP_SMALL = 256 * 1024  # files up to this size keep their bytes between check and upload ...
KEEP_BUDGET = 512 * 1024 * 1024  # ... up to this much in all


def push(
    s3: S3Service,
    src_dir: Any,
    uri: S3Uri,
    *,
    workers: int = 16,
    delete: bool = False,
    dry_run: bool = False,
    progress: bool = True,
    manifest: bool = True,
    preflight: bool = True,
) -> TransferResult:
    """Upload the folder ``src_dir`` to the S3 folder ``uri`` (a single file works too).

    With ``manifest`` (datasets), ``manifest.jsonl`` is written LAST; a packed folder (made by
    ``rectrain data pack``) keeps its own manifest, checked against its shards first.
    ``delete`` removes objects under the prefix that are not in ``src_dir``.
    """
    started = time.monotonic()
    src = Path(src_dir).expanduser()
    client = s3.client
    result = TransferResult("push", str(src), str(uri), dry_run=dry_run)
    if src.is_file():
        _push_file(client, src, uri, result, dry_run)
        result.seconds = time.monotonic() - started
        return result
    if not src.is_dir():
        raise DataError("folder not found.", "check the path you want to upload.", path=str(src))

    existing: Optional[Manifest] = None
    if manifest and (src / MANIFEST_NAME).is_file():
        existing = Manifest.read(src / MANIFEST_NAME)
        if existing.kind != "packed":
            existing = None  # a plain manifest is rewritten from the files themselves
    skip_top = {MANIFEST_NAME} if manifest else set()
    files = [_LocalFile(rel, path) for rel, path in iter_files(src) if rel not in skip_top]
    result.packed = existing is not None

    if preflight and not dry_run:
        write_probe(client, uri, need_delete=delete)
    remote = remote_files(s3, uri)

    log.info("checking %d local file(s) against %s ...", len(files), uri)
    _compare(client, uri, files, remote, workers)
    manifest_obj: Optional[Manifest] = None
    manifest_bytes = b""
    if manifest:
        if existing is not None:
            _check_shards(existing, files, src)
            manifest_obj = existing
        else:
            manifest_obj = Manifest(entries=[ManifestEntry(f.rel, f.size, f.sha256) for f in files], dirs=[])
        manifest_bytes = manifest_obj.to_bytes()
        result.manifest = str(uri.join(MANIFEST_NAME))

    todo = [f for f in files if f.upload]
    local_rels = {f.rel for f in files}
    extra = sorted(rel for rel in remote if rel not in local_rels and not (manifest and rel == MANIFEST_NAME))
    result.files_total = len(files)
    result.bytes_total = sum(f.size for f in files)
    result.skipped = len(files) - len(todo)
    result.planned = [str(uri.join(f.rel)) for f in todo]
    result.deletions = [str(uri.join(rel)) for rel in extra] if delete else []
    remote_manifest = remote.get(MANIFEST_NAME) if manifest else None
    manifest_same = bool(
        remote_manifest and remote_manifest.etag.lower() == hashlib.md5(manifest_bytes).hexdigest()
    )  # noqa: S324
    if manifest and not manifest_same:
        result.planned.append(str(uri.join(MANIFEST_NAME)))
    if dry_run:
        result.transferred = len(todo)
        result.bytes_transferred = sum(f.size for f in todo)
        result.seconds = time.monotonic() - started
        return result

    changing = bool(todo) or (delete and bool(extra)) or not manifest_same
    if manifest and remote_manifest is not None and changing:
        # the dataset is about to change: it must not look complete until the new manifest lands
        delete_keys(client, uri.bucket, [remote_manifest.key])
        manifest_same = False  # deleted: written again at the end, even if its bytes are the same

    done_lock = threading.Lock()
    with TransferProgress(f"push {uri}", len(todo), sum(f.size for f in todo), progress) as bar:
        fast = s3.fast_path(workers + 4)

        def upload(item: _LocalFile) -> None:
            put_object(
                client,
                uri.bucket,
                uri.join(item.rel).key,
                path=item.path,
                sha=item.sha256,
                size=item.size,
                data=item.data,
                fast=fast,
            )
            item.data = None
            with done_lock:
                result.transferred += 1
                result.bytes_transferred += item.size
            bar.advance(item.size)

        try:
            run_parallel(todo, upload, workers)
        except RectrainError as exc:
            raise note_partial(exc, result, "push", len(todo)) from exc.__cause__

    if delete and extra:
        delete_keys(client, uri.bucket, [uri.join(rel).key for rel in extra])
        result.deleted = len(extra)
    if manifest and not manifest_same:
        put_object(client, uri.bucket, uri.join(MANIFEST_NAME).key, data=manifest_bytes)
    result.seconds = time.monotonic() - started
    log.debug("%s", result.summary())
    return result



def _push_file(client: Any, src: Path, uri: S3Uri, result: TransferResult, dry_run: bool) -> None:
    """``src`` is one file: upload it to ``uri`` (a folder key gets the file's name)."""
    target = uri.join(src.name) if (not uri.key or uri.key.endswith("/")) else uri
    sha, size = sha256_file(src), src.stat().st_size
    result.files_total, result.bytes_total = 1, size
    result.planned = [str(target)]
    if not dry_run:
        put_object(client, target.bucket, target.key, path=src, sha=sha, size=size)
        result.transferred, result.bytes_transferred = 1, size


def _compare(client: Any, uri: S3Uri, files: List[_LocalFile], remote: Dict[str, ObjectInfo],
             workers: int) -> None:
    """Hash every local file (in parallel) and mark those S3 already holds (``upload =
    False``); small files keep their bytes for the upload, within ``KEEP_BUDGET``."""
    kept = [0]
    kept_lock = threading.Lock()

    def check(item: _LocalFile) -> None:
        data = None
        try:
            if item.path.stat().st_size <= KEEP_SMALL:
                data = item.path.read_bytes()
        except OSError as exc:
            raise DataError(
                f"cannot read: {exc}.", "check the file's permissions.", path=str(item.path)
            ) from exc
        if data is not None:
            item.size = len(data)
            item.sha256 = hashlib.sha256(data).hexdigest()
            item.md5 = hashlib.md5(data).hexdigest()  # noqa: S324 - compared with the ETag
        else:
            item.sha256, item.md5, item.size = file_digests(item.path)
        obj = remote.get(item.rel)
        if obj is not None and obj.size == item.size and obj.etag.lower() == item.md5:
            item.upload = False
            return
        if data is not None:
            with kept_lock:
                if kept[0] + len(data) <= KEEP_BUDGET:
                    kept[0] += len(data)
                    item.data = data
        if obj is None or obj.size != item.size:
            return
        try:  # multipart or encrypted: compare the sha256 we stored
            head = client.head_object(Bucket=uri.bucket, Key=obj.key)
        except Exception:  # noqa: BLE001 - then upload it again
            return
        if (head.get("Metadata") or {}).get("sha256") == item.sha256:
            item.upload = False
            item.data = None

    run_parallel(files, check, workers)


def _check_shards(existing: Manifest, files: List[_LocalFile], src: Path) -> None:
    by_rel = {f.rel: f for f in files}
    problems = []
    for shard in existing.shards:
        item = by_rel.get(shard.path)
        if item is None:
            problems.append(f"{shard.path}: missing")
        elif item.size != shard.size or item.sha256 != shard.sha256:
            problems.append(f"{shard.path}: differs from the manifest")
    if problems:
        raise IntegrityError(
            f"The packed dataset {src} does not match its manifest: {'; '.join(problems[:5])}.",
            "pack the dataset again (rectrain data pack).",
        )


__all__ = ["push"]
