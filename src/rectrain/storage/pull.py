"""Pull: download an S3 folder into a local folder, concurrent, resumable and verified; a packed
dataset (:mod:`rectrain.storage.pack`) can be unpacked on the fly, or later from local disk.

- Resumable: a local file with the same size and sha256 is not downloaded again.
- Verified: with a ``manifest.jsonl`` there, exactly the files it lists are downloaded and each
  is checked against it; otherwise against the object's own sha256 metadata or MD5 ETag
  (:func:`rectrain.storage.objects.download_object`). Keys that would land outside the
  destination are refused before anything is written. ``delete`` removes extra local files
  only when asked.
"""

from __future__ import annotations

import os
import posixpath
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

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
)
from rectrain.storage.aws_errors import error_code, translate_error
from rectrain.storage.manifest import (
    MANIFEST_NAME,
    PART_SUFFIX,
    Manifest,
    check_relpath,
    file_digests,
    iter_files,
)
from rectrain.storage.objects import ObjectInfo, download_object, read_object, remote_files
from rectrain.storage.pack import entries_by_shard, extract_shard, shard_extracted
from rectrain.storage.parallel import run_parallel
from rectrain.storage.progress import TransferProgress
from rectrain.storage.result import TransferResult, note_partial
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import S3Service

log = get_logger("storage.pull")


def _plan_pull(uri: S3Uri, remote: Dict[str, ObjectInfo], dst: Path) -> None:
    for rel in remote:
        check_relpath(rel, str(uri.join(rel)))
        target = (dst / rel).resolve()
        if dst.resolve() not in target.parents:
            raise DataError(
                f"'{rel}' would land outside {dst}; refused.",
                "remove or rename that object; rectrain only writes inside the destination.",
                path=str(uri.join(rel)),
            )


def _remote_manifest(s3: S3Service, uri: S3Uri, remote: Dict[str, ObjectInfo],
                     result: TransferResult) -> Tuple[Optional[Manifest], bytes]:
    """The dataset's manifest and its bytes; none for a prefix rectrain did not push. An upload
    by rectrain without its manifest (written last) stopped before its end: refused."""
    if MANIFEST_NAME in remote:
        raw = read_object(s3.client, uri.bucket, remote[MANIFEST_NAME].key)
        result.manifest = str(uri.join(MANIFEST_NAME))
        return Manifest.parse(raw.decode("utf-8", "replace"), str(uri.join(MANIFEST_NAME))), raw
    checkpoints = any(rel.rsplit("/", 1)[-1] == "_COMPLETE.json" for rel in remote)  # markers, no manifest
    if not checkpoints and _pushed_by_rectrain(s3, uri, remote):
        raise StorageError(
            f"no {MANIFEST_NAME} at {uri}: rectrain writes it last, so this upload may have been "
            "interrupted (files missing or half there), and nothing says which files belong.",
            "push the dataset again (`rectrain s3 push`), or pass --no-verify-manifest to pull the "
            "files that are there (each checked against its own checksum).")
    log.info("no %s at %s: each file is checked against its own checksum only", MANIFEST_NAME, uri)
    return None, b""


def _pushed_by_rectrain(s3: S3Service, uri: S3Uri, remote: Dict[str, ObjectInfo]) -> bool:
    """Whether the objects were uploaded by rectrain (its SHA-256 in their metadata): one HEAD."""
    first = remote[sorted(remote)[0]]
    try:
        head = s3.call("head_object", "s3:GetObject", uri.join(sorted(remote)[0]), Bucket=uri.bucket,
                       Key=first.key)
    except RectrainError:
        return False
    return bool((head.get("Metadata") or {}).get("sha256"))


def _claim_destination(dst: Path, uri: S3Uri, todo: List[Wanted]) -> None:
    """Before any byte lands: a local file the pull would replace (it differs from S3's) must be
    one an earlier pull wrote there, unchanged since (the local manifest.jsonl vouches for it);
    a file of the user's is never replaced."""
    replaced = [rel for rel, _, _ in todo if (dst / rel).exists()]
    if not replaced:
        return
    try:
        ours = Manifest.read(dst / MANIFEST_NAME).by_path()
    except (OSError, RectrainError):
        ours = {}
    foreign = [rel for rel in replaced if rel not in ours or not (dst / rel).is_file()
               or sha256_file(dst / rel) != ours[rel].sha256]
    refuse_replacing(dst, foreign, command="s3 pull", source=str(uri))


def _local_matches(path: Path, size: int, sha256: Optional[str], etag_md5: Optional[str]) -> bool:
    try:
        if not path.is_file() or path.stat().st_size != size:
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
    workers: int = 16,
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
    packed dataset with ``unpack=True`` is streamed and extracted in parallel into the original
    tree. ``delete`` removes local files that are not part of the download. Nothing under
    ``uri`` is an error (unless it names one object, which is downloaded), or with
    ``empty_ok`` an empty download (a first run's checkpoints).
    """
    started = time.monotonic()
    dst = Path(dst_dir).expanduser()
    if delete:
        refuse_delete_in(dst)
    client = s3.client
    result = TransferResult("pull", str(uri), str(dst), dry_run=dry_run)
    remote = remote_files(s3, uri)
    if not remote and not empty_ok:
        target = dst / uri.name if dst.is_dir() or str(dst_dir).endswith(("/", os.sep)) else dst
        _pull_object(client, uri, target, result, dry_run)
    if not remote:
        result.seconds = time.monotonic() - started
        return result
    _plan_pull(uri, remote, dst)

    dataset, manifest_raw = _remote_manifest(s3, uri, remote, result) if verify_manifest else (None, b"")
    if dataset is not None and dataset.kind == "packed" and unpack:
        return _pull_unpack(
            client,
            uri,
            remote,
            dataset,
            dst,
            workers=workers,
            delete=delete,
            dry_run=dry_run,
            progress=progress,
            started=started,
            result=result,
        )

    wanted = _wanted(uri, remote, dataset)
    result.files_total = len(wanted)
    result.bytes_total = sum(obj.size for _, obj, _ in wanted)
    todo = _not_here(wanted, dst, workers)
    keep = {rel for rel, _, _ in wanted} | ({MANIFEST_NAME} if dataset is not None else set())
    extra = sorted(rel for rel, _ in iter_files(dst) if rel not in keep) if (delete and dst.is_dir()) else []
    result.skipped = len(wanted) - len(todo)
    result.planned = [str(dst / rel) for rel, _, _ in todo]
    result.deletions = [str(dst / rel) for rel in extra]
    if dry_run:
        result.transferred = len(todo)
        result.bytes_transferred = sum(obj.size for _, obj, _ in todo)
        result.seconds = time.monotonic() - started
        return result

    _claim_destination(dst, uri, todo)
    dst.mkdir(parents=True, exist_ok=True)
    _clean_partials(dst)
    for folder in sorted({posixpath.dirname(rel) for rel, _, _ in todo} - {""}):
        (dst / folder).mkdir(parents=True, exist_ok=True)
    done_lock = threading.Lock()
    with TransferProgress(f"pull {uri}", len(todo), sum(obj.size for _, obj, _ in todo), progress) as bar:
        fast = s3.fast_path(workers + 4)

        def fetch(item: Tuple[str, ObjectInfo, Optional[str]]) -> None:
            rel, obj, sha = item
            size = download_object(
                client,
                uri.bucket,
                obj.key,
                dst / rel,
                expected_sha256=sha,
                expected_size=obj.size if sha else None,
                fast=fast,
            )
            with done_lock:
                result.transferred += 1
                result.bytes_transferred += size
            bar.advance(size)

        try:
            run_parallel(todo, fetch, workers)
        except RectrainError as exc:
            raise note_partial(exc, result, "pull", len(todo)) from exc.__cause__
    for rel in extra:
        try:
            remove_file(dst / rel, missing_ok=False)
            result.deleted += 1
        except OSError as exc:
            raise StorageError(
                f"Cannot delete {dst / rel}: {exc}.", "check the folder's permissions."
            ) from exc
    if dataset is not None:
        with atomic_open(dst / MANIFEST_NAME, "wb") as fh:
            fh.write(manifest_raw)
    result.seconds = time.monotonic() - started
    log.debug("%s", result.summary())
    return result


Wanted = Tuple[str, ObjectInfo, Optional[str]]  # (rel, object, expected sha256)


def _wanted(uri: S3Uri, remote: Dict[str, ObjectInfo], dataset: Optional[Manifest]) -> List[Wanted]:
    """What to fetch: with a manifest exactly what it lists (all there, sizes as listed), else
    everything under ``uri``."""
    wanted: List[Wanted] = []
    if dataset is not None:
        listed = dataset.shards if dataset.kind == "packed" else dataset.entries
        missing = [e.path for e in listed if e.path not in remote]
        if missing:
            raise IntegrityError(
                f"The dataset at {uri} is incomplete: {len(missing)} file(s) in its manifest are "
                f"not on S3 (e.g. {', '.join(missing[:3])}).",
                "push the dataset again from the original copy; the rerun uploads only what is missing.",
            )
        for entry in listed:
            obj = remote[entry.path]
            if obj.size != entry.size:
                raise IntegrityError(
                    f"{uri.join(entry.path)} is {obj.size} bytes on S3 but the manifest says {entry.size}.",
                    "push the dataset again from the original copy.",
                )
            wanted.append((entry.path, obj, entry.sha256))
    else:
        wanted = [(rel, obj, None) for rel, obj in sorted(remote.items())]
    return wanted


def _not_here(wanted: List[Wanted], dst: Path, workers: int) -> List[Wanted]:
    """The wanted files that ``dst`` does not already hold, checked in parallel."""
    if not dst.is_dir():
        return list(wanted)
    todo: List[Wanted] = []
    todo_lock = threading.Lock()

    def check(item: Wanted) -> None:
        rel, obj, sha = item
        md5 = obj.etag.lower() if (len(obj.etag) == 32 and "-" not in obj.etag) else None
        if not _local_matches(dst / rel, obj.size, sha, md5):
            with todo_lock:
                todo.append(item)

    run_parallel(wanted, check, workers)
    todo.sort(key=lambda t: t[0])
    return todo


def _pull_object(client: Any, uri: S3Uri, target: Path, result: TransferResult, dry_run: bool) -> None:
    """``uri`` is no folder: download it as one object, or say that nothing is there."""
    nothing = StorageError(f"Nothing found at {uri}.", "check the address with `rectrain s3 ls`.")
    if not uri.key or uri.key.endswith("/"):
        raise nothing
    try:
        head = client.head_object(Bucket=uri.bucket, Key=uri.key)
    except Exception as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            raise nothing from exc
        raise translate_error(exc, "s3:GetObject", str(uri)) from exc
    result.files_total, result.bytes_total = 1, int(head.get("ContentLength", 0))
    result.planned = [str(target)]
    if not dry_run:
        download_object(client, uri.bucket, uri.key, target)
        result.transferred, result.bytes_transferred = 1, result.bytes_total


def _clean_partials(dst: Path) -> None:
    """Remove temporary download names left by an interrupted pull."""
    for dirpath, _, filenames in os.walk(dst):
        for name in filenames:
            if name.endswith(PART_SUFFIX):
                remove_quietly(os.path.join(dirpath, name))




def _pull_unpack(
    client: Any,
    uri: S3Uri,
    remote: Dict[str, ObjectInfo],
    manifest: Manifest,
    dst: Path,
    *,
    workers: int,
    delete: bool,
    dry_run: bool,
    progress: bool,
    started: float,
    result: TransferResult,
) -> TransferResult:
    """``pull --unpack`` of a packed dataset: each shard streams from S3 into extraction, several
    shards at once; the result is verified file by file against the manifest."""
    result.packed = True
    groups = entries_by_shard(manifest)
    shards = {s.path: s for s in manifest.shards}
    missing = [name for name in shards if name not in remote]
    if missing:
        raise IntegrityError(
            f"The packed dataset at {uri} is incomplete: {', '.join(missing[:3])} "
            f"{'is' if len(missing) == 1 else 'are'} not on S3.",
            "push the packed dataset again; the rerun uploads only what is missing.",
        )
    todo = [name for name, entries in groups.items() if not (dst.is_dir() and shard_extracted(dst, entries))]
    files_todo = sum(len(groups[n]) for n in todo)
    bytes_todo = sum(shards[n].size for n in todo)
    result.files_total = manifest.files
    result.bytes_total = manifest.total_bytes
    result.skipped = sum(len(groups[n]) for n in groups if n not in todo)
    result.planned = [str(uri.join(n)) for n in todo]
    listed = {e.path for e in manifest.entries}
    if delete and dst.is_dir():
        result.deletions = [str(dst / rel) for rel, _ in iter_files(dst) if rel not in listed]
    if dry_run:
        result.transferred, result.bytes_transferred = files_todo, bytes_todo
        result.seconds = time.monotonic() - started
        return result
    dst.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    with TransferProgress(f"pull --unpack {uri}", files_todo, bytes_todo, progress) as bar:

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
            raise note_partial(exc, result, "pull --unpack", files_todo) from exc.__cause__
        except OSError as exc:
            raise StorageError(
                f"Cannot write into {dst}: {exc}.", "check free disk space and permissions."
            ) from exc
    result.deleted = _finish_tree(dst, manifest, delete)
    result.seconds = time.monotonic() - started
    log.debug("%s", result.summary())
    return result


def unpack_dataset(
    src_dir: Any, dst_dir: Any, *, workers: int = 4, delete: bool = False, progress: bool = True
) -> Dict[str, Any]:
    """Extract a packed dataset (shards + manifest.jsonl in ``src_dir``) into ``dst_dir``, checking
    every file against the manifest. Shards whose files are all already there are skipped."""
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
    manifest = Manifest.read(src / MANIFEST_NAME)
    if manifest.kind != "packed":
        raise DataError(
            "this manifest is not a packed dataset's.",
            "give the folder made by `rectrain data pack`.",
            path=str(src / MANIFEST_NAME),
        )
    groups = entries_by_shard(manifest)
    claim_output_dir(dst, command="data unpack", writes=[], inputs=[("packed dataset", src)], create=False)
    refuse_replacing(dst, [e.path for e in manifest.entries if (dst / e.path).exists()
                           and not shard_extracted(dst, [e])], command="data unpack", source=str(src))
    dst.mkdir(parents=True, exist_ok=True)
    shards = {s.path: s for s in manifest.shards}
    todo = [name for name, entries in groups.items() if not shard_extracted(dst, entries)]
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


def _finish_tree(dst: Path, manifest: Manifest, delete: bool) -> int:
    for rel in manifest.dirs:
        (dst / check_relpath(rel)).mkdir(parents=True, exist_ok=True)
    deleted = 0
    if delete:
        listed = {e.path for e in manifest.entries}
        for rel, path in iter_files(dst):
            if rel not in listed:
                remove_file(path)
                deleted += 1
    return deleted


__all__ = ["pull", "unpack_dataset"]
