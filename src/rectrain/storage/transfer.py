"""Fast, resumable, verified transfers between a local folder and an S3 prefix.

- Concurrent: a pool of threads sharing one boto3 client (its connection pool is sized to it).
- Resumable: an object already there with the same size and checksum (ETag = MD5 of a
  single-part upload, else the ``sha256`` metadata) is skipped; a local file with the same
  size and sha256 is not downloaded again.
- Verified: each upload carries its SHA-256 (``x-amz-checksum-sha256``, checked by the server,
  and ``x-amz-meta-sha256`` for later reads); each download is hashed while it streams and
  compared with the manifest, else the object's sha256 metadata, else its MD5 ETag. A
  mismatch raises IntegrityError and the file is never kept: downloads go to a temporary
  name and are renamed only when verified.
- Datasets: ``push`` writes ``manifest.jsonl`` LAST (and first removes a stale one), so a
  partial upload never looks finished; ``pull`` downloads exactly what the manifest lists
  and checks it. Keys that would land outside the destination are refused before anything
  is written. ``--delete`` removes extra files only when asked.
"""

from __future__ import annotations

import base64
import hashlib
import os
import posixpath
import secrets
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from rectrain.errors import DataError, IntegrityError, PermissionProblem, RectrainError, StorageError
from rectrain.fsutil import atomic_open, remove_quietly
from rectrain.logs import get_logger
from rectrain.outputs import refuse_delete_in
from rectrain.storage.fastpath import FastPath
from rectrain.storage.manifest import (
    CHUNK,
    MANIFEST_NAME,
    PART_SUFFIX,
    Manifest,
    ManifestEntry,
    build_manifest,
    check_relpath,
    file_digests,
    iter_files,
)
from rectrain.storage.progress import TransferProgress
from rectrain.storage.s3 import S3Uri, error_code, make_client, translate_error

log = get_logger("storage.transfer")

SMALL_FILE = 8 * 1024 * 1024  # read into memory and sent in one request
SINGLE_PUT_LIMIT = 5 * 1024**3  # S3's limit for one PUT; larger files use multipart
PROBE_PREFIX = ".rectrain-write-probe-"


@dataclass
class ObjectInfo:
    key: str
    size: int
    etag: str
    last_modified: Any = None


@dataclass
class TransferResult:
    direction: str  # "push" or "pull"
    source: str
    destination: str
    files_total: int = 0
    bytes_total: int = 0
    transferred: int = 0
    bytes_transferred: int = 0
    skipped: int = 0
    deleted: int = 0
    dry_run: bool = False
    seconds: float = 0.0
    manifest: Optional[str] = None
    packed: bool = False
    planned: List[str] = field(default_factory=list)  # what was (or, dry-run, would be) transferred
    deletions: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        verb = (
            "would transfer" if self.dry_run else ("uploaded" if self.direction == "push" else "downloaded")
        )
        rate = self.bytes_transferred / self.seconds / 1e6 if self.seconds > 0 else 0.0
        text = (
            f"{verb} {self.transferred} of {self.files_total} files "
            f"({_human(self.bytes_transferred)}), skipped {self.skipped} already there"
        )
        if self.deleted or self.deletions:
            text += f", {'would delete' if self.dry_run else 'deleted'} {len(self.deletions)}"
        if not self.dry_run:
            text += (
                f" in {self.seconds:.1f} s ({self.transferred / max(self.seconds, 1e-9):.0f} files/s, "
                f"{rate:.1f} MB/s)"
            )
        return text


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} TB"


def get_client(client: Any = None, endpoint_url: Optional[str] = None, workers: int = 16) -> Any:
    if client is not None:
        return client
    return make_client(endpoint_url, max_pool_connections=max(workers + 4, 10))


def run_parallel(items: Iterable[Any], fn: Callable[[Any], None], workers: int) -> None:
    """Run ``fn(item)`` for every item on ``workers`` threads. The first exception stops the
    rest (work in flight finishes) and is raised; Ctrl-C stops the workers too."""
    iterator = iter(items)
    lock = threading.Lock()
    stop = threading.Event()
    errors: List[BaseException] = []

    def worker() -> None:
        while not stop.is_set():
            with lock:
                item = next(iterator, _END)
            if item is _END:
                return
            try:
                fn(item)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                with lock:
                    errors.append(exc)
                stop.set()
                return

    threads = [
        threading.Thread(target=worker, daemon=True, name=f"rectrain-transfer-{i}")
        for i in range(max(1, workers))
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    except BaseException:
        stop.set()
        for thread in threads:
            thread.join(5)
        raise
    if errors:
        raise errors[0]


_END = object()


# ----------------------------------------------------------------------------- listing
def list_objects(
    s3_uri: Any, *, client: Any = None, endpoint_url: Optional[str] = None, folder: bool = True
) -> List[ObjectInfo]:
    """Every object under ``s3_uri`` (as a folder: ``s3://b/data`` lists ``data/...``, not
    ``data2/...``; ``folder=False`` lists the raw key prefix)."""
    uri = S3Uri.parse(s3_uri)
    client = get_client(client, endpoint_url)
    prefix = uri.prefix if folder else uri.key
    out: List[ObjectInfo] = []
    try:
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=uri.bucket, Prefix=prefix):
            for obj in page.get("Contents", []) or []:
                out.append(
                    ObjectInfo(
                        obj["Key"],
                        int(obj.get("Size", 0)),
                        str(obj.get("ETag", "")).strip('"'),
                        obj.get("LastModified"),
                    )
                )
    except Exception as exc:
        raise translate_error(exc, "s3:ListBucket", str(uri)) from exc
    return out


def _remote_files(client: Any, uri: S3Uri) -> Dict[str, ObjectInfo]:
    """{relative path: object} under the folder ``uri`` (folder markers and probes left out)."""
    prefix = uri.prefix
    out = {}
    for obj in list_objects(uri, client=client):
        rel = obj.key[len(prefix) :]
        if not rel or rel.endswith("/") or rel.split("/")[-1].startswith(PROBE_PREFIX):
            continue
        out[rel] = obj
    return out


# ----------------------------------------------------------------------------- single objects
def _b64(sha_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(sha_hex)).decode("ascii")


def _put_object(
    client: Any,
    bucket: str,
    key: str,
    path: Optional[Path],
    sha: str,
    size: int,
    data: Optional[bytes] = None,
    fast: Optional[FastPath] = None,
) -> None:
    resource = f"s3://{bucket}/{key}"
    checksum = _b64(sha)
    args: Dict[str, Any] = {
        "Bucket": bucket,
        "Key": key,
        "ChecksumSHA256": checksum,
        "Metadata": {"sha256": sha},
    }
    if size <= SMALL_FILE and data is None and path is not None:
        data = path.read_bytes()
    if data is not None and fast is not None and fast.put(bucket, key, data, sha, checksum):
        return
    try:
        if data is not None:
            client.put_object(Body=data, **args)
        elif size <= SINGLE_PUT_LIMIT:
            assert path is not None
            with open(path, "rb") as fh:
                client.put_object(Body=fh, ContentLength=size, **args)
        else:
            assert path is not None
            client.upload_file(
                str(path), bucket, key, ExtraArgs={"Metadata": {"sha256": sha}, "ChecksumAlgorithm": "SHA256"}
            )
    except Exception as exc:
        if (
            error_code(exc) in ("BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest")
            and path is not None
        ):
            raise IntegrityError(
                f"{path} changed while it was being uploaded to {resource} (checksum "
                "mismatch); it was not stored.",
                "rerun the push when nothing is writing to the folder.",
            ) from exc
        raise translate_error(exc, "s3:PutObject", resource) from exc


def upload_file(path: Any, s3_uri: Any, *, client: Any = None, endpoint_url: Optional[str] = None) -> None:
    """Upload one file, with its SHA-256 checked by the server and kept in the object's metadata.
    The object appears only when complete (an S3 PUT is atomic). A key ending in '/' gets the
    file's name appended."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found.", "check the path.", path=str(path))
    uri = S3Uri.parse(s3_uri)
    if not uri.key or uri.key.endswith("/"):
        uri = uri.join(path.name)
    sha, _, size = file_digests(path)
    _put_object(get_client(client, endpoint_url), uri.bucket, uri.key, path, sha, size)


def _expected_from_etag(etag: str, response: Dict[str, Any]) -> Optional[str]:
    """The MD5 an ETag stands for, when it is one (single-part, not SSE-KMS/SSE-C)."""
    etag = etag.strip('"')
    if "-" in etag or len(etag) != 32:
        return None
    if response.get("ServerSideEncryption") == "aws:kms" or response.get("SSECustomerAlgorithm"):
        return None
    return etag.lower()


def _download_object(
    client: Any,
    bucket: str,
    key: str,
    dest: Path,
    *,
    expected_sha256: Optional[str] = None,
    expected_size: Optional[int] = None,
    on_bytes: Optional[Callable[[int], None]] = None,
    attempts: int = 3,
    fast: Optional[FastPath] = None,
) -> int:
    """Stream ``key`` to a temporary name beside ``dest``, verify it, rename it. Returns its size."""
    resource = f"s3://{bucket}/{key}"
    for attempt in range(1, attempts + 1):
        try:
            return _download_once(
                client,
                bucket,
                key,
                dest,
                expected_sha256,
                expected_size,
                on_bytes,
                fast if attempt == 1 else None,
            )
        except IntegrityError:
            raise
        except StorageError as exc:
            transient = isinstance(exc.__cause__, Exception) and type(exc.__cause__).__name__ in (
                "ResponseStreamingError",
                "ReadTimeoutError",
                "ConnectionClosedError",
                "IncompleteReadError",
                "ProtocolError",
                "IncompleteRead",
            )
            if not transient or attempt == attempts:
                raise
            log.debug("retrying %s after %s", resource, exc)
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


def _download_once(
    client: Any,
    bucket: str,
    key: str,
    dest: Path,
    expected_sha256: Optional[str],
    expected_size: Optional[int],
    on_bytes: Optional[Callable[[int], None]],
    fast: Optional[FastPath] = None,
) -> int:
    resource = f"s3://{bucket}/{key}"
    got_fast = fast.get(bucket, key) if fast is not None else None
    if got_fast is not None:
        response, body = got_fast
    else:
        try:
            response = client.get_object(Bucket=bucket, Key=key)
        except Exception as exc:
            raise translate_error(exc, "s3:GetObject", resource) from exc
        body = response["Body"]
    if not dest.parent.is_dir():
        dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{secrets.token_hex(4)}{PART_SUFFIX}"
    sha = hashlib.sha256()
    need_md5 = not expected_sha256 and not (response.get("Metadata") or {}).get("sha256")
    md5 = hashlib.md5() if need_md5 else None  # noqa: S324 - compared with the ETag
    size = 0
    try:
        try:
            with open(tmp, "wb") as fh:
                for chunk in body.iter_chunks(CHUNK):
                    fh.write(chunk)
                    sha.update(chunk)
                    if md5 is not None:
                        md5.update(chunk)
                    size += len(chunk)
                    if on_bytes is not None:
                        on_bytes(len(chunk))
        except OSError as exc:
            raise StorageError(
                f"Cannot write {dest}: {exc}.", "check free disk space and permissions."
            ) from exc
        except Exception as exc:
            raise translate_error(exc, "s3:GetObject", resource) from exc
        want = expected_sha256 or (response.get("Metadata") or {}).get("sha256")
        got = sha.hexdigest()
        problem = ""
        if expected_size is not None and size != expected_size:
            problem = f"{size} bytes arrived, {expected_size} expected"
        elif want and got != want.lower():
            problem = f"sha256 {got[:16]}... but {want[:16]}... expected"
        elif not want:
            md5_want = _expected_from_etag(str(response.get("ETag", "")), response)
            if md5_want and md5 is not None and md5.hexdigest() != md5_want:
                problem = f"MD5 {md5.hexdigest()} does not match the ETag {md5_want}"
        if problem:
            raise IntegrityError(
                f"{resource} is damaged or was changed after upload: {problem}. "
                f"The download was discarded ({dest} not written).",
                "upload the file again from the original copy (rectrain s3 push), then pull again.",
            )
        os.replace(tmp, dest)
    except BaseException:
        remove_quietly(tmp)
        raise
    return size


def download_file(
    s3_uri: Any,
    path: Any,
    *,
    client: Any = None,
    endpoint_url: Optional[str] = None,
    expected_sha256: Optional[str] = None,
) -> None:
    """Download one object to ``path`` (a temporary name, renamed when verified)."""
    uri = S3Uri.parse(s3_uri)
    _download_object(
        get_client(client, endpoint_url), uri.bucket, uri.key, Path(path), expected_sha256=expected_sha256
    )


def read_object(client: Any, bucket: str, key: str) -> bytes:
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        raise translate_error(exc, "s3:GetObject", f"s3://{bucket}/{key}") from exc


def _delete_keys(client: Any, bucket: str, keys: List[str]) -> None:
    for start in range(0, len(keys), 1000):
        batch = keys[start : start + 1000]
        try:
            response = client.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
            )
        except Exception as exc:
            raise translate_error(exc, "s3:DeleteObject", f"s3://{bucket}/{batch[0]}") from exc
        errors = response.get("Errors") or []
        if errors:
            from botocore.exceptions import ClientError

            first = errors[0]
            denied = ClientError(
                {"Error": {"Code": first.get("Code"), "Message": first.get("Message")}}, "DeleteObjects"
            )
            raise translate_error(denied, "s3:DeleteObject", f"s3://{bucket}/{first.get('Key')}") from denied


def delete_prefix(s3_uri: Any, *, client: Any = None, endpoint_url: Optional[str] = None) -> int:
    """Delete every object under the folder ``s3_uri``. Returns how many."""
    uri = S3Uri.parse(s3_uri)
    client = get_client(client, endpoint_url)
    keys = [o.key for o in list_objects(uri, client=client)]
    _delete_keys(client, uri.bucket, keys)
    return len(keys)


def write_probe(client: Any, uri: S3Uri, *, need_delete: bool = False) -> None:
    """The cheap permission preflight: PUT an empty probe object under the prefix, then delete it.
    A denied PUT (or, with ``need_delete``, a denied DELETE) raises PermissionProblem before any
    transfer."""
    key = f"{uri.prefix}{PROBE_PREFIX}{uuid.uuid4().hex[:12]}"
    try:
        client.put_object(Bucket=uri.bucket, Key=key, Body=b"")
    except Exception as exc:
        raise translate_error(exc, "s3:PutObject", str(uri)) from exc
    try:
        client.delete_object(Bucket=uri.bucket, Key=key)
    except Exception as exc:
        err = translate_error(exc, "s3:DeleteObject", str(uri))
        if need_delete or not isinstance(err, PermissionProblem):
            raise err from exc
        log.warning(
            "could not remove the write probe s3://%s/%s (no s3:DeleteObject); it is empty and harmless.",
            uri.bucket,
            key,
        )


# ----------------------------------------------------------------------------- push
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
    src_dir: Any,
    s3_uri: Any,
    *,
    client: Any = None,
    endpoint_url: Optional[str] = None,
    workers: int = 16,
    delete: bool = False,
    dry_run: bool = False,
    progress: bool = True,
    manifest: bool = True,
    preflight: bool = True,
) -> TransferResult:
    """Upload the folder ``src_dir`` to the S3 folder ``s3_uri`` (a single file works too).

    With ``manifest`` (datasets), ``manifest.jsonl`` is written LAST; a packed folder (made by
    ``rectrain data pack``) keeps its own manifest, checked against its shards first.
    ``delete`` removes objects under the prefix that are not in ``src_dir``.
    """
    started = time.monotonic()
    uri = S3Uri.parse(s3_uri)
    src = Path(src_dir).expanduser()
    client = get_client(client, endpoint_url, workers)
    result = TransferResult("push", str(src), str(uri), dry_run=dry_run)
    if src.is_file():
        target = uri.join(src.name) if (not uri.key or uri.key.endswith("/")) else uri
        sha, _, size = file_digests(src)
        result.files_total, result.bytes_total = 1, size
        result.planned = [str(target)]
        if not dry_run:
            _put_object(client, target.bucket, target.key, src, sha, size)
            result.transferred, result.bytes_transferred = 1, size
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
    remote = _remote_files(client, uri)

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

    log.info("checking %d local file(s) against %s ...", len(files), uri)
    run_parallel(files, check, workers)
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
        _delete_keys(client, uri.bucket, [remote_manifest.key])

    done_lock = threading.Lock()
    with TransferProgress(f"push {uri}", len(todo), sum(f.size for f in todo), progress) as bar:
        fast = FastPath(client, maxsize=workers + 4)

        def upload(item: _LocalFile) -> None:
            _put_object(
                client,
                uri.bucket,
                uri.join(item.rel).key,
                item.path,
                item.sha256,
                item.size,
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
            raise _partial(exc, result, "push", len(todo)) from exc.__cause__

    if delete and extra:
        _delete_keys(client, uri.bucket, [uri.join(rel).key for rel in extra])
        result.deleted = len(extra)
    if manifest and not manifest_same:
        _put_object(
            client,
            uri.bucket,
            uri.join(MANIFEST_NAME).key,
            None,
            hashlib.sha256(manifest_bytes).hexdigest(),
            len(manifest_bytes),
            data=manifest_bytes,
        )
    result.seconds = time.monotonic() - started
    log.debug("%s", result.summary())
    return result


def _partial(exc: RectrainError, result: TransferResult, verb: str, total: int) -> RectrainError:
    """The same error, saying what was finished and that a rerun resumes."""
    note = (
        f" ({result.transferred} of {total} files finished before the failure; "
        f"rerun the same {verb} to resume: finished files are skipped)"
    )
    exc.message = exc.message.rstrip(".") + note + "."
    exc.args = (str(exc),)
    return exc


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


# ----------------------------------------------------------------------------- pull
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
    s3_uri: Any,
    dst_dir: Any,
    *,
    client: Any = None,
    endpoint_url: Optional[str] = None,
    workers: int = 16,
    delete: bool = False,
    dry_run: bool = False,
    progress: bool = True,
    unpack: bool = False,
    verify_manifest: bool = True,
) -> TransferResult:
    """Download the S3 folder ``s3_uri`` into ``dst_dir``.

    With a ``manifest.jsonl`` there (and ``verify_manifest``), exactly the files it lists are
    downloaded and each is checked against it; a listed file missing on S3 is an error. A
    packed dataset with ``unpack=True`` is streamed and extracted in parallel into the original
    tree. ``delete`` removes local files that are not part of the download.
    """
    started = time.monotonic()
    uri = S3Uri.parse(s3_uri)
    dst = Path(dst_dir).expanduser()
    if delete:
        refuse_delete_in(dst)
    client = get_client(client, endpoint_url, workers)
    result = TransferResult("pull", str(uri), str(dst), dry_run=dry_run)
    remote = _remote_files(client, uri)
    if not remote:
        if uri.key and not uri.key.endswith("/"):  # a single object?
            try:
                head = client.head_object(Bucket=uri.bucket, Key=uri.key)
            except Exception as exc:
                if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                    raise StorageError(
                        f"Nothing found at {uri}.", "check the address with `rectrain s3 ls`."
                    ) from exc
                raise translate_error(exc, "s3:GetObject", str(uri)) from exc
            target = dst / uri.name if dst.is_dir() or str(dst_dir).endswith(("/", os.sep)) else dst
            result.files_total, result.bytes_total = 1, int(head.get("ContentLength", 0))
            result.planned = [str(target)]
            if not dry_run:
                _download_object(client, uri.bucket, uri.key, target)
                result.transferred, result.bytes_transferred = 1, result.bytes_total
            result.seconds = time.monotonic() - started
            return result
        raise StorageError(f"Nothing found at {uri}.", "check the address with `rectrain s3 ls`.")
    _plan_pull(uri, remote, dst)

    dataset: Optional[Manifest] = None
    manifest_raw = b""
    if verify_manifest and MANIFEST_NAME in remote:
        manifest_raw = read_object(client, uri.bucket, remote[MANIFEST_NAME].key)
        dataset = Manifest.parse(manifest_raw.decode("utf-8", "replace"), str(uri.join(MANIFEST_NAME)))
        result.manifest = str(uri.join(MANIFEST_NAME))
    elif verify_manifest:
        log.info("no %s at %s: each file is checked against its own checksum only", MANIFEST_NAME, uri)

    if dataset is not None and dataset.kind == "packed" and unpack:
        from rectrain.storage.pack import pull_unpack

        return pull_unpack(
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

    # what to fetch: (rel, object, expected sha256)
    wanted: List[Tuple[str, ObjectInfo, Optional[str]]] = []
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

    result.files_total = len(wanted)
    result.bytes_total = sum(obj.size for _, obj, _ in wanted)
    todo: List[Tuple[str, ObjectInfo, Optional[str]]] = []
    todo_lock = threading.Lock()

    def check(item: Tuple[str, ObjectInfo, Optional[str]]) -> None:
        rel, obj, sha = item
        md5 = obj.etag.lower() if (len(obj.etag) == 32 and "-" not in obj.etag) else None
        if not _local_matches(dst / rel, obj.size, sha, md5):
            with todo_lock:
                todo.append(item)

    if dst.is_dir():
        run_parallel(wanted, check, workers)
        todo.sort(key=lambda t: t[0])
    else:
        todo = list(wanted)
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

    dst.mkdir(parents=True, exist_ok=True)
    _clean_partials(dst)
    for folder in sorted({posixpath.dirname(rel) for rel, _, _ in todo} - {""}):
        (dst / folder).mkdir(parents=True, exist_ok=True)
    done_lock = threading.Lock()
    with TransferProgress(f"pull {uri}", len(todo), sum(obj.size for _, obj, _ in todo), progress) as bar:
        fast = FastPath(client, maxsize=workers + 4)

        def fetch(item: Tuple[str, ObjectInfo, Optional[str]]) -> None:
            rel, obj, sha = item
            size = _download_object(
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
            raise _partial(exc, result, "pull", len(todo)) from exc.__cause__
    for rel in extra:
        try:
            (dst / rel).unlink()
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


def _clean_partials(dst: Path) -> None:
    """Remove temporary download names left by an interrupted pull."""
    for dirpath, _, filenames in os.walk(dst):
        for name in filenames:
            if name.endswith(PART_SUFFIX):
                try:
                    os.unlink(os.path.join(dirpath, name))
                except OSError:
                    pass


__all__ = [
    "ObjectInfo",
    "TransferResult",
    "push",
    "pull",
    "upload_file",
    "download_file",
    "list_objects",
    "delete_prefix",
    "write_probe",
    "build_manifest",
]
