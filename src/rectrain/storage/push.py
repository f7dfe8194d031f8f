"""Push: upload a local folder to an S3 folder, concurrent, resumable and verified, in flat memory.

- Resumable: an object already there with the same size and checksum (ETag = MD5 of a
  single-part upload, else the ``sha256`` metadata) is skipped. The listing says what is there:
  no HEAD before a PUT (only for multipart or encrypted objects of the same size).
- Verified: every PUT carries the file's SHA-256 and MD5, checked by the server, and the ETag it
  answers must be the MD5 sent (:func:`rectrain.storage.objects.put_object`): no read-back.
- Datasets: ``manifest.jsonl`` is written LAST, and a stale one is removed before the first
  object changes, so a partial upload never looks finished. ``delete`` removes extra objects
  only when asked.
- Flat memory: the local files, the listing and the manifest are sorted on disk
  (:mod:`rectrain.storage.spool`) and matched by one merge; each file is read, hashed, compared
  and sent by one worker, its bytes never kept.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import tempfile
import threading
import time
from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import Any, Dict, Iterator, NamedTuple, Optional, Sequence, Tuple

from rectrain.errors import DataError, IntegrityError, RectrainError
from rectrain.fsutil import sha256_file
from rectrain.logs import get_logger
from rectrain.outputs import remove_quietly
from rectrain.storage import objects
from rectrain.storage.fastloop import Request, RequestLoop
from rectrain.storage.fastpath import check_put_answer, put_headers
from rectrain.storage.manifest import (
    MANIFEST_NAME,
    ManifestEntry,
    file_digests,
    header_line,
    local_files,
    read_header,
    write_manifest,
)
from rectrain.storage.objects import delete_keys, put_object, remote_files, write_probe
from rectrain.storage.parallel import TRANSFER_WORKERS, run_parallel
from rectrain.storage.progress import TransferProgress
from rectrain.storage.result import TransferResult, note_partial
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import S3Service
from rectrain.storage.spool import SortedSpool, merge_join

log = get_logger("storage.push")

LARGE_AT_ONCE = 8  # files sent in parallel parts (objects.SMALL_FILE and up) uploading at once
_Item = Tuple[str, int, Optional[Sequence[Any]]]  # (relative path, local size, remote record)


class _Plan(NamedTuple):
    """A file to upload: its key, path, size, digests, and bytes when small."""

    key: str
    path: Path
    size: int
    sha: str
    md5: Optional[str]
    data: Optional[bytes]


def _put_request(plan: _Plan) -> Request:
    assert plan.data is not None and plan.md5 is not None
    return Request("PUT", plan.key, put_headers(plan.size, plan.md5, plan.sha, objects.b64(plan.sha)),
                   plan.sha, plan.data)


def push(
    s3: S3Service,
    src_dir: Any,
    uri: S3Uri,
    *,
    workers: int = TRANSFER_WORKERS,
    delete: bool = False,
    dry_run: bool = False,
    progress: bool = True,
    manifest: bool = True,
    preflight: bool = True,
) -> TransferResult:
    """Upload the folder ``src_dir`` to the S3 folder ``uri`` (a single file works too).

    With ``manifest`` (datasets), ``manifest.jsonl`` is written LAST; a packed folder (made by
    ``rectrain data pack``) keeps its own manifest, its shards checked against it first.
    ``delete`` removes objects under the prefix that are not in ``src_dir``.
    """
    started = time.monotonic()
    src = Path(src_dir).expanduser()
    result = TransferResult("push", str(src), str(uri), dry_run=dry_run)
    if src.is_file():
        _push_one(s3, src, uri, result, dry_run)
    elif not src.is_dir():
        raise DataError("folder not found.", "check the path you want to upload.", path=str(src))
    else:
        with _Push(s3, uri, src, result, workers=workers, manifest=manifest, delete=delete,
                   dry_run=dry_run, probe=preflight and not dry_run) as job:
            job.run(progress)
    result.seconds = time.monotonic() - started
    log.debug("%s", result.summary())
    return result


def _push_one(s3: S3Service, src: Path, uri: S3Uri, result: TransferResult, dry_run: bool) -> None:
    target = uri.join(src.name) if (not uri.key or uri.key.endswith("/")) else uri
    sha, size = sha256_file(src), src.stat().st_size
    result.files_total, result.bytes_total = 1, size
    result.plan(str(target))
    if not dry_run:
        put_object(s3.client, target.bucket, target.key, path=src, sha=sha, size=size, retry=s3.retry)
        result.transferred, result.bytes_transferred = 1, size


class _Push:
    """One folder push: the plan (a merge of the sorted local files and the sorted listing), the
    workers, then deletions and the manifest."""

    def __init__(self, s3: S3Service, uri: S3Uri, src: Path, result: TransferResult, *, workers: int,
                 manifest: bool, delete: bool, dry_run: bool, probe: bool = False) -> None:
        self.client, self.uri, self.src, self.result = s3.client, uri, src, result
        self.retry = s3.retry  # the service's policy: RECTRAIN_S3_RETRY_S holds for every request
        self.probe = probe  # the write probe, after the local walk (a FIFO is named before any request)
        self.s3 = s3
        self.workers, self.manifest, self.delete, self.dry_run = workers, manifest, delete, dry_run
        self.stack = ExitStack()
        self.lock = threading.Lock()
        self.packed: Optional[Dict[str, ManifestEntry]] = None  # shard name -> its manifest entry
        self.remote_manifest: Optional[Sequence[Any]] = None
        self.manifest_removed = False
        self.fast = s3.fast_path(workers + 4)
        # many small files want many requests in flight; a large file's parts have their own threads
        # and buffers: 64 of them at once would be 512 part uploads
        self.large = threading.BoundedSemaphore(LARGE_AT_ONCE)
        self.entries = self.stack.enter_context(SortedSpool())  # the new manifest's entries
        self.extra = self.stack.enter_context(SortedSpool())  # objects with no local file
        if manifest and (src / MANIFEST_NAME).is_file():
            header = read_header(src / MANIFEST_NAME)
            if header.kind == "packed":  # a plain manifest is rewritten from the files themselves
                self.packed = {s.path: s for s in header.shards}
        result.packed = self.packed is not None

    def __enter__(self) -> _Push:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stack.close()

    # ------------------------------------------------------------------ plan
    def _items(self, local: SortedSpool, remote: SortedSpool) -> Iterator[_Item]:
        for rel, lrec, rrec in merge_join(local, remote):
            if lrec is not None:
                yield rel, int(lrec[1]), rrec
            elif self.manifest and rel == MANIFEST_NAME:
                self.remote_manifest = rrec
            else:
                assert rrec is not None
                self.extra.add((rel, rrec[3]))
                if self.delete:
                    self.result.plan_deletion(str(self.uri.join(rel)))

    def _check_packed(self, local: SortedSpool) -> None:
        if self.packed is None:
            return
        sizes = {rel: size for rel, size in local if rel in self.packed}
        problems = [f"{name}: missing" for name in self.packed if name not in sizes]
        problems += [f"{name}: differs from the manifest" for name, size in sizes.items()
                     if size != self.packed[name].size]
        if problems:
            raise _packed_mismatch(self.src, problems)

    # ------------------------------------------------------------------ one file
    def _before_change(self) -> None:
        """The dataset is about to change: it must not look complete until the new manifest lands."""
        with self.lock:
            if self.remote_manifest is not None and not self.manifest_removed:
                delete_keys(self.client, self.uri.bucket, [self.remote_manifest[3]], retry=self.retry)
                self.manifest_removed = True

    def _same_remote(self, rrec: Optional[Sequence[Any]], size: int, sha: str, md5: str) -> bool:
        if rrec is None or int(rrec[1]) != size:
            return False
        if str(rrec[2]).lower() == md5:
            return True
        try:  # multipart or encrypted: compare the sha256 we stored
            head = self.client.head_object(Bucket=self.uri.bucket, Key=rrec[3])
        except Exception:  # noqa: BLE001 - then upload it again
            return False
        return (head.get("Metadata") or {}).get("sha256") == sha

    def _one(self, item: _Item, bar: TransferProgress) -> None:
        plan = self._prepare(item, bar)
        if plan is not None:
            self._upload(plan, bar)

    def _prepare(self, item: _Item, bar: TransferProgress) -> Optional[_Plan]:
        """Read and hash the file, record it for the manifest; None when S3 holds it already
        (counted as skipped), else what to upload."""
        rel, _, rrec = item
        path = self.src / rel
        data: Optional[bytes] = None
        try:
            if os.stat(path).st_size <= objects.IN_MEMORY:  # read once: hashed and sent from memory
                data = path.read_bytes()
        except OSError as exc:
            raise DataError(f"cannot read: {exc}.", "check the file's permissions.", path=str(path)) from exc
        if data is not None:
            size, sha = len(data), hashlib.sha256(data).hexdigest()
            md5 = hashlib.md5(data).hexdigest()  # noqa: S324 - compared with the ETag
        else:
            sha, md5, size = file_digests(path)
        if self.packed is not None and rel in self.packed and (
                self.packed[rel].sha256 != sha or self.packed[rel].size != size):
            raise _packed_mismatch(self.src, [f"{rel}: differs from the manifest"])
        with self.lock:
            self.entries.add((rel, size, sha))
            self.result.bytes_total += size
        if self._same_remote(rrec, size, sha, md5):
            with self.lock:
                self.result.skipped += 1
            bar.advance(size)
            return None
        with self.lock:
            self.result.plan(str(self.uri.join(rel)))
        if not self.dry_run:
            self._before_change()
        return _Plan(self.uri.join(rel).key, path, size, sha, md5, data)

    def _upload(self, plan: _Plan, bar: TransferProgress) -> None:
        if not self.dry_run:
            with self.large if plan.size > objects.SMALL_FILE else nullcontext():
                put_object(self.client, self.uri.bucket, plan.key, path=plan.path, sha=plan.sha,
                           size=plan.size, data=plan.data, fast=self.fast, md5=plan.md5, retry=self.retry)
        self._done(plan.size, bar)

    def _done(self, size: int, bar: TransferProgress) -> None:
        with self.lock:
            self.result.transferred += 1
            self.result.bytes_transferred += size
        bar.advance(size)

    def _send_all(self, items: Iterator[_Item], bar: TransferProgress) -> None:
        """Every item uploaded: the small files to a plain-HTTP endpoint through one event loop
        (:mod:`rectrain.storage.fastloop`: a thread per connection costs more CPU than the
        PUTs), the others, and what the loop hands back, on the workers' threads."""
        loop = RequestLoop(self.fast, self.uri.bucket, self.workers, 64 * 1024) \
            if self.fast is not None and not self.dry_run else None
        if loop is None or not loop.usable():
            run_parallel(items, lambda item: self._one(item, bar), self.workers)
            return
        with SortedSpool() as large:

            limit = min(objects.IN_MEMORY, objects.SMALL_FILE)

            def small() -> Iterator[_Plan]:
                for item in items:
                    if item[1] > limit:
                        large.add(item)
                        continue
                    plan = self._prepare(item, bar)
                    if plan is not None:
                        yield plan

            def delivered(plan: _Plan, headers: Dict[str, str], _: bytes) -> None:
                assert plan.md5 is not None
                check_put_answer(self.uri.bucket, plan.key, headers, plan.md5)
                self._done(plan.size, bar)

            back = loop.run(small(), _put_request, delivered)
            # what the loop handed back, then what it did not take, then the large files
            run_parallel(back, lambda plan: self._upload(plan, bar), self.workers)
            rest = itertools.chain(items, (tuple(item) for item in large))
            run_parallel(rest, lambda item: self._one(item, bar), self.workers)

    # ------------------------------------------------------------------ the whole push
    def run(self, progress: bool) -> None:
        result = self.result
        skip_top = {MANIFEST_NAME} if self.manifest else set()
        local = self.stack.enter_context(local_files(self.src, skip_top=skip_top))
        self._check_packed(local)
        if self.probe:
            write_probe(self.client, self.uri, need_delete=self.delete)
        remote = self.stack.enter_context(remote_files(self.s3, self.uri))
        result.files_total = local.count
        log.info("checking %d local file(s) against %s ...", local.count, self.uri)
        with TransferProgress(f"push {self.uri}", local.count, local.size_total, progress) as bar:
            try:
                self._send_all(self._items(local, remote), bar)
            except RectrainError as exc:
                raise note_partial(exc, result, "push", local.count) from exc.__cause__
        if self.dry_run:
            result.transferred = result.planned_count
        if self.manifest:
            self._finish_with_manifest()
        elif self.delete and not self.dry_run:
            self._delete_extra()

    def _delete_extra(self) -> None:
        batch = []
        for _, key in self.extra:
            batch.append(key)
            if len(batch) == 1000:
                self._before_change()
                delete_keys(self.client, self.uri.bucket, batch, retry=self.retry)
                self.result.deleted += len(batch)
                batch = []
        if batch:
            self._before_change()
            delete_keys(self.client, self.uri.bucket, batch, retry=self.retry)
            self.result.deleted += len(batch)

    def _finish_with_manifest(self) -> None:
        result = self.result
        result.manifest = str(self.uri.join(MANIFEST_NAME))
        folder = Path(self.stack.enter_context(tempfile.TemporaryDirectory(prefix="rectrain-push-")))
        if self.packed is not None:
            manifest_path = self.src / MANIFEST_NAME
        else:
            manifest_path = folder / MANIFEST_NAME
            entries = (ManifestEntry(rec[0], rec[1], rec[2]) for rec in self.entries)
            header = header_line("files", self.entries.count, result.bytes_total, [], [])
            write_manifest(manifest_path, header, entries)
        md5 = _md5_file(manifest_path)
        remote = self.remote_manifest
        deleting = self.delete and self.extra.count > 0  # removes the remote manifest first
        same = remote is not None and not self.manifest_removed and not deleting and \
            str(remote[2]).lower() == md5
        if not same:
            result.plan(result.manifest)
        if self.dry_run:
            return
        if self.delete:
            self._delete_extra()
        if not same or self.manifest_removed:  # a manifest deleted here is written again
            self._before_change()
            try:
                put_object(self.client, self.uri.bucket, self.uri.join(MANIFEST_NAME).key, path=manifest_path,
                           stream=True, retry=self.retry)
            finally:
                if manifest_path.parent == folder:
                    remove_quietly(manifest_path)


def _md5_file(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324 - compared with the ETag
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _packed_mismatch(src: Path, problems: Sequence[str]) -> IntegrityError:
    return IntegrityError(
        f"The packed dataset {src} does not match its manifest: {'; '.join(problems[:5])}.",
        "pack the dataset again (rectrain data pack).",
    )


__all__ = ["push"]
