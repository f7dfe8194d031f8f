"""Pull: download an S3 folder into a local folder, concurrent, resumable and verified, in flat
memory; a packed dataset (:mod:`rectrain.storage.pack`) can be unpacked on the way, or later from
local disk.

- Resumable: a local file with the same size and sha256 is not downloaded again.
- Verified: with a ``manifest.jsonl`` there, exactly the files it lists are downloaded and each
  is checked against it; otherwise against the object's own sha256 metadata or MD5 ETag
  (:func:`rectrain.storage.objects.download_object`). Keys that could land outside the
  destination are refused before anything is written (and a folder that resolves outside it,
  through a link, when it is reached). ``delete`` removes extra local files only when asked.
- Flat memory: the listing, the manifest and the local files are sorted on disk
  (:mod:`rectrain.storage.spool`) and matched by merges.
- Unpacking: shards are downloaded (each checked against its sha256 in the manifest) beside the
  destination and extracted by worker processes while the next ones download
  (:mod:`rectrain.storage.extract`).
"""

from __future__ import annotations

import itertools
import os
import queue
import shutil
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from rectrain.errors import DataError, IntegrityError, RectrainError, StorageError, UserError
from rectrain.fsutil import sha256_file
from rectrain.logs import get_logger
from rectrain.outputs import (
    atomic_open,
    claim_output_dir,
    is_within,
    refuse_delete_in,
    refuse_replacing,
    remove_file,
    remove_quietly,
    remove_tree,
)
from rectrain.storage.aws_errors import error_code, translate_error
from rectrain.storage.extract import IN_PROCESS_BELOW, Extractor, Targets, usable_cpus
from rectrain.storage.fastloop import Request, RequestLoop
from rectrain.storage.fastpath import EMPTY_SHA256, FastPath, response_fields
from rectrain.storage.manifest import (
    MANIFEST_NAME,
    PART_SUFFIX,
    ManifestEntry,
    ManifestFile,
    check_relpath,
    file_digests,
    local_files,
)
from rectrain.storage.objects import IN_MEMORY, download_object, remote_files, store_download
from rectrain.storage.pack import shard_extracted
from rectrain.storage.parallel import TRANSFER_WORKERS, run_parallel
from rectrain.storage.progress import TransferProgress
from rectrain.storage.result import TransferResult, note_partial
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import S3Service
from rectrain.storage.spool import SortedSpool, merge_join

log = get_logger("storage.pull")

# (relative path, key, size, expected sha256 or None, etag)
_Want = Tuple[str, str, int, Optional[str], str]


def _plan_pull(uri: S3Uri, remote: Iterable[Sequence[Any]]) -> Tuple[int, Optional[Sequence[Any]]]:
    """Refuse any key that would land outside the destination (absolute, ``..``, empty parts),
    before anything is written. Returns (total bytes, the manifest's record or None)."""
    total = 0
    manifest = None
    for rec in remote:
        check_relpath(rec[0], str(uri.join(rec[0])))
        total += int(rec[1])
        if rec[0] == MANIFEST_NAME:
            manifest = rec
    return total, manifest


def _refuse_without_manifest(s3: S3Service, uri: S3Uri, remote: SortedSpool) -> None:
    """No manifest at ``uri``: fine for a prefix rectrain did not push as a dataset (a
    checkpoint's folder has its markers instead), but an upload by rectrain without its
    manifest (written last) stopped before its end: refused."""
    first: Optional[Sequence[Any]] = None
    for rec in remote:
        first = first or rec
        if str(rec[0]).rsplit("/", 1)[-1] == "_COMPLETE.json":
            break  # a checkpoint prefix: markers, no manifest
    else:
        if first is not None and _pushed_by_rectrain(s3, uri, first):
            raise StorageError(
                f"no {MANIFEST_NAME} at {uri}: rectrain writes it last, so this upload may have been "
                "interrupted (files missing or half there), and nothing says which files belong.",
                "push the dataset again (`rectrain s3 push`), or pass --no-verify-manifest to pull the "
                "files that are there (each checked against its own checksum).")
    log.info("no %s at %s: each file is checked against its own checksum only", MANIFEST_NAME, uri)


def _pushed_by_rectrain(s3: S3Service, uri: S3Uri, rec: Sequence[Any]) -> bool:
    """Whether the objects were uploaded by rectrain (its SHA-256 in their metadata): one HEAD."""
    try:
        head = s3.call("head_object", "s3:GetObject", uri.join(rec[0]), Bucket=uri.bucket, Key=rec[3])
    except RectrainError:
        return False
    return bool((head.get("Metadata") or {}).get("sha256"))


def _claim_destination(dst: Path, uri: S3Uri, replaced: Iterable[Sequence[Any]]) -> None:
    """Before any byte lands: a local file the pull would replace (``replaced``: sorted records
    whose first field is the path; each differs from S3's) must be one an earlier pull wrote
    there, unchanged since (the local manifest.jsonl vouches for it); a file of the user's is
    never replaced."""
    foreign: List[str] = []
    try:
        with ManifestFile(dst / MANIFEST_NAME) as ours:
            vouched = ((e.path, e.sha256) for e in ours.entries())
            for rel, here, entry in merge_join(replaced, vouched):
                if here is None:
                    continue
                path = dst / rel
                if entry is None or not path.is_file() or sha256_file(path) != entry[1]:
                    foreign.append(rel)
    except (OSError, RectrainError):  # no manifest of an earlier pull (or a damaged one)
        foreign = [rec[0] for rec in replaced]
    refuse_replacing(dst, foreign, command="s3 pull", source=str(uri))


def _local_matches(path: Path, size: int, sha256: Optional[str], etag_md5: Optional[str]) -> bool:
    try:
        if path.stat().st_size != size or not path.is_file():
            return False
    except OSError:
        return False
    if not sha256 and not etag_md5:
        return False
    sha, md5, _ = file_digests(path)
    return sha == sha256 if sha256 else md5 == etag_md5


def pull(
    s3: S3Service,
    uri: S3Uri,
    dst_dir: Any,
    *,
    workers: int = TRANSFER_WORKERS,
    delete: bool = False,
    dry_run: bool = False,
    progress: bool = True,
    unpack: bool = False,
    verify_manifest: bool = True,
    empty_ok: bool = False,
) -> TransferResult:
    """Download the S3 folder ``uri`` into ``dst_dir``.

    With a ``manifest.jsonl`` there (and ``verify_manifest``), exactly the files it lists are
    downloaded and each is checked against it; a listed file missing on S3 is an error. A
    packed dataset with ``unpack=True`` is downloaded shard by shard and extracted in parallel
    into the original tree. ``delete`` removes local files that are not part of the download.
    Nothing under ``uri`` is an error (unless it names one object, which is downloaded), or
    with ``empty_ok`` an empty download (a first run's checkpoints).
    """
    started = time.monotonic()
    dst = Path(dst_dir).expanduser()
    if delete:
        refuse_delete_in(dst)
    result = TransferResult("pull", str(uri), str(dst), dry_run=dry_run)
    with ExitStack() as stack:
        remote = stack.enter_context(remote_files(s3, uri))
        if not remote.count and not empty_ok:
            target = dst / uri.name if dst.is_dir() or str(dst_dir).endswith(("/", os.sep)) else dst
            _pull_object(s3, uri, target, result, dry_run)
        if not remote.count:
            result.seconds = time.monotonic() - started
            return result
        total, manifest_rec = _plan_pull(uri, remote)
        dataset: Optional[ManifestFile] = None
        if verify_manifest and manifest_rec is not None:
            dataset = stack.enter_context(_fetch_manifest(s3, uri, manifest_rec, stack))
            result.manifest = str(uri.join(MANIFEST_NAME))
        elif verify_manifest:
            _refuse_without_manifest(s3, uri, remote)
        if dataset is not None and dataset.kind == "packed" and unpack:
            _pull_unpack(s3, uri, remote, dataset, dst, workers=workers, delete=delete, dry_run=dry_run,
                         progress=progress, result=result)
        else:
            _pull_files(s3, uri, remote, dataset, dst, total, workers=workers, delete=delete,
                        dry_run=dry_run, progress=progress, result=result)
    result.seconds = time.monotonic() - started
    log.debug("%s", result.summary())
    return result


def _fetch_manifest(s3: S3Service, uri: S3Uri, rec: Sequence[Any], stack: ExitStack) -> ManifestFile:
    """The dataset's manifest, downloaded (checked against its own sha256 metadata) to a
    temporary file and read from there as a stream."""
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rectrain-pull-")))
    download_object(s3.client, uri.bucket, rec[3], folder / MANIFEST_NAME, retry=s3.retry)
    return ManifestFile(folder / MANIFEST_NAME, str(uri.join(MANIFEST_NAME)))


def _wanted(uri: S3Uri, remote: SortedSpool, dataset: Optional[ManifestFile]) -> Iterator[_Want]:
    """What to download, sorted: every object, or exactly what the manifest lists (each object
    there with the listed size, else IntegrityError before anything is downloaded)."""
    if dataset is None:
        for rec in remote:
            yield rec[0], rec[3], int(rec[1]), None, str(rec[2])
        return
    listed: Iterable[ManifestEntry] = dataset.entries()
    if dataset.kind == "packed":
        listed = sorted(dataset.header.shards, key=lambda e: e.path)
    records = ((e.path, e.size, e.sha256) for e in listed)
    for rel, entry, obj in merge_join(records, remote):
        if entry is None:
            continue
        if obj is None:
            raise IntegrityError(
                f"The dataset at {uri} is incomplete: {rel}, listed in its manifest, is not on S3.",
                "push the dataset again from the original copy; the rerun uploads only what is missing.",
            )
        if int(obj[1]) != int(entry[1]):
            raise IntegrityError(
                f"{uri.join(rel)} is {obj[1]} bytes on S3 but the manifest says {entry[1]}.",
                "push the dataset again from the original copy.",
            )
        yield rel, obj[3], int(entry[1]), entry[2], str(obj[2])


def _pull_files(s3: S3Service, uri: S3Uri, remote: SortedSpool, dataset: Optional[ManifestFile], dst: Path,
                total: int, *, workers: int, delete: bool, dry_run: bool, progress: bool,
                result: TransferResult) -> None:
    """Download the objects (or the manifest's files), each checked, skipping what is already here."""
    count = remote.count
    if dataset is not None:  # a first pass checks that everything listed is there
        count = total = 0
        for _, _, size, _, _ in _wanted(uri, remote, dataset):
            count += 1
            total += size
    result.files_total, result.bytes_total = count, total
    existed = dst.is_dir()
    if not dry_run:
        dst.mkdir(parents=True, exist_ok=True)
        _clean_partials(dst)
    targets = Targets(dst) if not dry_run else None
    client, fast = s3.client, s3.fast_path(workers + 4)
    lock = threading.Lock()

    def needed(item: Sequence[Any], bar: TransferProgress) -> bool:
        """False (counted as skipped) when the local file already matches."""
        rel, _, size, sha, etag = item
        md5 = etag.lower() if (len(etag) == 32 and "-" not in etag) else None
        if existed and _local_matches(dst / rel, size, sha, md5):
            with lock:
                result.skipped += 1
            bar.advance(size)
            return False
        return True

    def download(item: Sequence[Any], bar: TransferProgress) -> None:
        rel, key, size, sha, _ = item
        with lock:
            result.plan(str(dst / rel))
        if not dry_run:
            assert targets is not None
            size = download_object(client, uri.bucket, key, targets.target(rel, str(uri.join(rel))),
                                   expected_sha256=sha, expected_size=size if sha else None, fast=fast,
                                   retry=s3.retry)
        done(size, bar)

    def deliver(item: Sequence[Any], headers: Dict[str, str], body: bytes, bar: TransferProgress) -> None:
        rel, key, size, sha, _ = item  # a GET the event loop received: checked and stored here
        with lock:
            result.plan(str(dst / rel))
        assert targets is not None
        target = targets.target(rel, str(uri.join(rel)))
        fields = response_fields(headers, len(body))
        size = store_download(f"s3://{uri.bucket}/{key}", fields, (body,), target, sha, size if sha else None)
        done(size, bar)

    def done(size: int, bar: TransferProgress) -> None:
        with lock:
            result.transferred += 1
            result.bytes_transferred += size
        bar.advance(size)

    def fetch(item: Sequence[Any], bar: TransferProgress) -> None:
        if needed(item, bar):
            download(item, bar)

    with TransferProgress(f"pull {uri}", count, total, progress) as bar:
        def download_all(items: Callable[[], Iterable[Sequence[Any]]]) -> None:
            _download_all(items, lambda i: download(i, bar), lambda i, f, b: deliver(i, f, b, bar),
                          fast, uri.bucket, workers)

        try:
            if existed and not dry_run:  # local files may be replaced: claimed before any byte lands
                _pull_into_existing(dst, uri, _wanted(uri, remote, dataset), lambda i: needed(i, bar),
                                    download_all, workers)
            elif dry_run:
                run_parallel(_wanted(uri, remote, dataset), lambda item: fetch(item, bar), workers)
            else:  # a new folder: nothing here to compare
                download_all(lambda: _wanted(uri, remote, dataset))
        except RectrainError as exc:
            raise note_partial(exc, result, "pull", count) from exc.__cause__
    keep = (rec[0] for rec in _wanted(uri, remote, dataset))
    _delete_extra(dst, keep, {MANIFEST_NAME} if dataset is not None else set(), delete, dry_run, result)
    if dataset is not None and not dry_run:
        with atomic_open(dst / MANIFEST_NAME, "wb") as fh, open(dataset.path, "rb") as src:
            shutil.copyfileobj(src, fh, 1 << 20)


def _download_all(items: Callable[[], Iterable[Sequence[Any]]], download: Callable[[Sequence[Any]], None],
                  deliver: Callable[[Sequence[Any], Dict[str, str], bytes], None], fast: Optional[FastPath],
                  bucket: str, workers: int) -> None:
    """Every item of ``items()`` (re-iterable, sorted) downloaded: the small ones from a
    plain-HTTP endpoint on ``workers`` connections of one event loop
    (:mod:`rectrain.storage.fastloop`: a thread per connection costs more CPU than the GETs),
    the others, and any the loop hands back, on ``workers`` threads."""
    loop = RequestLoop(fast, bucket, workers, IN_MEMORY) if fast is not None else None
    if loop is None or not loop.usable():
        run_parallel(items(), download, workers)
        return
    taken = [-1]

    def small() -> Iterator[Sequence[Any]]:
        for index, item in enumerate(items()):
            if int(item[2]) <= IN_MEMORY:
                taken[0] = index
                yield item

    back = loop.run(small(), lambda item: Request("GET", str(item[1]), {}, EMPTY_SHA256), deliver)
    rest = (item for index, item in enumerate(items()) if index > taken[0] or int(item[2]) > IN_MEMORY)
    run_parallel(itertools.chain(back, rest), download, workers)


def _pull_into_existing(dst: Path, uri: S3Uri, wanted: Iterable[Sequence[Any]],
                        needed: Callable[[Sequence[Any]], bool],
                        download_all: Callable[[Callable[[], Iterable[Sequence[Any]]]], None],
                        workers: int) -> None:
    """A pull into a folder that exists: every local file is compared first (in parallel), what
    must be downloaded is kept sorted on disk, and the local files it would replace are claimed
    (:func:`_claim_destination`) before the first download starts."""
    lock = threading.Lock()
    with SortedSpool() as todo, SortedSpool() as replaced:

        def sort_out(item: Sequence[Any]) -> None:
            if needed(item):
                here = os.path.lexists(dst / item[0])
                with lock:
                    todo.add(list(item))
                    if here:
                        replaced.add((item[0],))

        run_parallel(wanted, sort_out, workers)
        if replaced.count:
            _claim_destination(dst, uri, replaced)
        download_all(lambda: iter(todo))


def _delete_extra(dst: Path, keep: Iterable[str], also_keep: set, delete: bool, dry_run: bool,
                  result: TransferResult) -> None:
    """With ``delete``: remove the local files that are not in ``keep`` (sorted paths)."""
    if not delete or not dst.is_dir():
        return
    with local_files(dst) as local:
        for rel, here, wanted in merge_join(local, ((k,) for k in keep)):
            if here is None or wanted is not None or rel in also_keep:
                continue
            result.plan_deletion(str(dst / rel))
            if dry_run:
                continue
            try:
                remove_file(dst / rel, missing_ok=False)
                result.deleted += 1
            except OSError as exc:
                raise StorageError(f"Cannot delete {dst / rel}: {exc}.",
                                   "check the folder's permissions.") from exc


def _pull_object(s3: S3Service, uri: S3Uri, target: Path, result: TransferResult, dry_run: bool) -> None:
    """``uri`` is no folder: download it as one object, or say that nothing is there."""
    nothing = StorageError(f"Nothing found at {uri}.", "check the address with `rectrain s3 ls`.")
    if not uri.key or uri.key.endswith("/"):
        raise nothing
    try:
        head = s3.client.head_object(Bucket=uri.bucket, Key=uri.key)
    except Exception as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            raise nothing from exc
        raise translate_error(exc, "s3:GetObject", str(uri)) from exc
    result.files_total, result.bytes_total = 1, int(head.get("ContentLength", 0))
    result.plan(str(target))
    if not dry_run:
        download_object(s3.client, uri.bucket, uri.key, target, retry=s3.retry)
        result.transferred, result.bytes_transferred = 1, result.bytes_total


def _clean_partials(dst: Path) -> None:
    """Remove temporary names left by an interrupted pull or unpack."""
    for dirpath, _, filenames in os.walk(dst):
        for name in filenames:
            if name.endswith(PART_SUFFIX):
                remove_quietly(os.path.join(dirpath, name))


# ----------------------------------------------------------------------------- packed datasets
def _shards_to_do(manifest: ManifestFile, dst: Path) -> List[ManifestEntry]:
    """The shards not yet fully extracted in ``dst`` (each file checked by sha256)."""
    shards = manifest.header.shards
    if not dst.is_dir():
        return list(shards)
    return [s for s in shards if not shard_extracted(dst, manifest.shard_entries(s.path))]


def _processes(files: int, shards: int) -> int:
    """Worker processes for extraction: none for a small dataset (starting them costs more)."""
    if files < IN_PROCESS_BELOW:
        return 0
    return usable_cpus() if usable_cpus() > 1 else 0


def _pull_unpack(s3: S3Service, uri: S3Uri, remote: SortedSpool, manifest: ManifestFile, dst: Path, *,
                 workers: int, delete: bool, dry_run: bool, progress: bool, result: TransferResult) -> None:
    """``pull --unpack`` of a packed dataset: shards are downloaded next to the destination (each
    checked against the manifest's sha256) and extracted by worker processes as they arrive;
    every file is checked against the manifest."""
    result.packed = True
    shards = list(_wanted(uri, remote, manifest))  # each listed shard on S3 with its size
    todo = {s.path for s in _shards_to_do(manifest, dst)}
    files_todo = sum(1 for s in todo for _ in manifest.shard_entries(s))
    result.files_total, result.bytes_total = manifest.files, manifest.bytes
    result.skipped = manifest.files - files_todo
    for rel, _, _, _, _ in shards:
        if rel in todo:
            result.plan(str(uri.join(rel)))
    if dry_run:
        result.transferred = files_todo
        result.bytes_transferred = sum(size for rel, _, size, _, _ in shards if rel in todo)
        _delete_extra(dst, (e.path for e in manifest.entries()), set(), delete, True, result)
        return
    dst.mkdir(parents=True, exist_ok=True)
    _clean_partials(dst)
    staging = Path(tempfile.mkdtemp(prefix=".rectrain-shards-", dir=dst))
    arrived: queue.Queue[Any] = queue.Queue()
    client, fast = s3.client, s3.fast_path(workers + 4)
    try:
        with Extractor(dst, _processes(files_todo, len(todo)), on_files=lambda n: bar.advance(0, n)) as ex, \
                TransferProgress(f"pull --unpack {uri}", files_todo, sum(
                    size for rel, _, size, _, _ in shards if rel in todo), progress) as bar:

            def fetch(item: _Want) -> None:
                rel, key, size, sha, _ = item
                download_object(client, uri.bucket, key, staging / rel, expected_sha256=sha,
                                expected_size=size, fast=fast, retry=s3.retry)
                bar.advance(size, 0)
                arrived.put(item)

            def download_all() -> None:
                try:
                    run_parallel([s for s in shards if s[0] in todo], fetch, min(workers, 4))
                    arrived.put(None)
                except BaseException as exc:  # noqa: BLE001 - handed to the extracting thread
                    arrived.put(exc)

            thread = threading.Thread(target=download_all, name="rectrain-shards", daemon=True)
            thread.start()
            try:
                for _ in range(len(todo) + 1):
                    item = arrived.get()
                    if item is None:
                        break
                    if isinstance(item, BaseException):
                        raise item
                    name = item[0]
                    written = ex.extract_shard(staging / name, name, str(uri.join(name)), manifest)
                    result.bytes_transferred += item[2]
                    result.transferred += written
                    ex.drain()
                    remove_file(staging / item[0])
            except RectrainError as exc:
                raise note_partial(exc, result, "pull --unpack", files_todo) from exc.__cause__
            except OSError as exc:
                raise StorageError(f"Cannot write into {dst}: {exc}.",
                                   "check free disk space and permissions.") from exc
            finally:
                thread.join(timeout=60)
    finally:
        remove_tree(staging, ignore_errors=True)
    result.deleted = _finish_tree(dst, manifest, delete)


def unpack_dataset(
    src_dir: Any, dst_dir: Any, *, workers: int = 4, delete: bool = False, progress: bool = True
) -> Dict[str, Any]:
    """Extract a packed dataset (shards + manifest.jsonl in ``src_dir``) into ``dst_dir``, checking
    every file against the manifest, with worker processes on every usable core (``workers``
    caps them; 1 extracts in this process). Shards whose files are all already there are skipped."""
    started = time.monotonic()
    src = Path(src_dir).expanduser()
    dst = Path(dst_dir).expanduser()
    if is_within(src, dst):
        raise UserError(
            f"-o {dst_dir} is (or holds) the packed dataset {src_dir}: the restored files would be "
            "mixed with its shards and manifest"
            + (", and --delete would remove them" if delete else "") + ".",
            f"unpack into a new folder, e.g. -o {dst.parent / (dst.name + '-unpacked')}.")
    if delete:
        refuse_delete_in(dst)
    if not (src / MANIFEST_NAME).is_file():
        raise DataError(
            f"no {MANIFEST_NAME} here, so this is not a packed dataset.",
            "give the folder made by `rectrain data pack`.",
            path=str(src),
        )
    with ManifestFile(src / MANIFEST_NAME) as manifest:
        if manifest.kind != "packed":
            raise DataError(
                "this manifest is not a packed dataset's.",
                "give the folder made by `rectrain data pack`.",
                path=str(src / MANIFEST_NAME),
            )
        _check_shard_names(manifest)
        claim_output_dir(dst, command="data unpack", writes=[], inputs=[("packed dataset", src)],
                         create=False)
        todo = _shards_to_do(manifest, dst)
        # a file of the user's that differs from the packed one is never replaced
        if dst.is_dir() and not _empty_folder(dst):
            refuse_replacing(dst, [e.path for s in todo for e in manifest.shard_entries(s.path)
                                   if os.path.lexists(dst / e.path) and not shard_extracted(dst, [e])],
                             command="data unpack", source=str(src))
        for shard in todo:
            if not (src / shard.path).is_file():
                raise DataError("shard missing.", "copy or download the whole packed dataset.",
                                path=str(src / shard.path))
        processes = min(_processes(manifest.files, len(todo)), max(1, workers)) if workers > 1 else 0
        with Extractor(dst, processes, on_files=lambda n: bar.advance(0, n)) as ex, TransferProgress(
                f"unpack {src.name}", manifest.files, 0, progress) as bar:
            for shard in todo:
                ex.extract_shard(src / shard.path, shard.path, shard.path, manifest, wait=False)
            ex.drain()
        deleted = _finish_tree(dst, manifest, delete)
        return {
            "dst": str(dst),
            "files": manifest.files,
            "bytes": manifest.bytes,
            "shards": len(manifest.header.shards),
            "shards_extracted": len(todo),
            "deleted": deleted,
            "seconds": time.monotonic() - started,
        }


def _empty_folder(path: Path) -> bool:
    with os.scandir(path) as entries:
        return next(entries, None) is None


def _check_shard_names(manifest: ManifestFile) -> None:
    names = {s.path for s in manifest.header.shards}
    for shard in manifest.spans:
        if shard not in names:
            raise IntegrityError(
                f"the manifest lists files in shard '{shard}', which it does not name.",
                "pack the dataset again with rectrain data pack.",
            )


def _finish_tree(dst: Path, manifest: ManifestFile, delete: bool) -> int:
    for rel in manifest.header.dirs:
        (dst / check_relpath(rel)).mkdir(parents=True, exist_ok=True)
    result = TransferResult("pull", "", str(dst))
    _delete_extra(dst, (e.path for e in manifest.entries()), set(), delete, False, result)
    return result.deleted


__all__ = ["pull", "unpack_dataset"]
