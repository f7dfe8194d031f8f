"""Single S3 objects: list, verified put and get, delete, and the write probe.

- Verified: each upload carries its SHA-256 (``x-amz-checksum-sha256``, checked by the server,
  and ``x-amz-meta-sha256`` for later reads); each download is hashed while it streams and
  compared with the expected sha256, else the object's sha256 metadata, else its MD5 ETag. A
  mismatch raises IntegrityError and the file is never kept: downloads go to a temporary name
  and are renamed only when verified.
- Errors are translated at this boundary (:mod:`rectrain.storage.aws_errors`), cause kept.
- Transient failures (a cut connection, a 5xx, SlowDown, a timeout, a download cut short) are
  retried within a time budget by the service's :class:`~rectrain.storage.service.RetryPolicy`
  (``retry=``; the transfer primitives default to one shared policy): a listing, an upload or
  a download is retried as a whole, the fast path included.
- The functions other packages call take the :class:`~rectrain.storage.service.S3Service` and
  :class:`~rectrain.storage.s3.S3Uri` values; the transfer primitives below them
  (``put_object``, ``download_object``, ``read_object``, ``delete_keys``, ``write_probe``) take
  the service's boto3 client and are for ``rectrain.storage`` itself.

Folders of objects are moved by :mod:`rectrain.storage.push` and :mod:`rectrain.storage.pull`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Dict, Iterable, Iterator, List, Optional, Tuple

from rectrain.errors import DataError, IntegrityError, PermissionProblem, StorageError
from rectrain.fsutil import sha256_file
from rectrain.logs import get_logger
from rectrain.outputs import move, open_stream, remove_quietly
from rectrain.storage.aws_errors import error_code, translate_error
from rectrain.storage.fastpath import FastPath
from rectrain.storage.manifest import CHUNK, PART_SUFFIX
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import RetryPolicy, S3Service, TransferCutShort
from rectrain.storage.spool import SortedSpool

log = get_logger("storage.objects")

IN_MEMORY = 256 * 1024  # files up to this are read into memory: hashed and sent from there
SMALL_FILE = 8 * 1024 * 1024  # up to this one PUT (streamed from the file above IN_MEMORY)
SINGLE_PUT_LIMIT = 5 * 1024**3  # S3's limit for one PUT
PART_SIZE = 8 * 1024 * 1024  # above SMALL_FILE: multipart, parts of at least this, in parallel
PART_WORKERS = 8


def _transfer_config(size: int) -> Any:
    """Parallel parts for a large object (at most 10,000 parts, S3's limit)."""
    from boto3.s3.transfer import TransferConfig

    part = max(PART_SIZE, -(-size // 10_000))
    return TransferConfig(multipart_threshold=SMALL_FILE, multipart_chunksize=part,
                          max_concurrency=PART_WORKERS, use_threads=True)


PROBE_PREFIX = ".rectrain-write-probe-"


@dataclass
class ObjectInfo:
    key: str
    size: int
    etag: str
    last_modified: Any = None


# ----------------------------------------------------------------------------- listing
def iter_objects(client: Any, uri: S3Uri, *, folder: bool = True, limit: Optional[int] = None,
                 fast: Optional[FastPath] = None) -> Iterator[ObjectInfo]:
    """Every object under ``uri`` (at most ``limit``), page by page as S3 lists them (sorted by
    key), never all at once in memory. ``fast``: pages through the fast path where it answers
    (without ``last_modified``), through the client where it does not (which then names the
    error)."""
    prefix = uri.prefix if folder else uri.key
    token: Optional[str] = None
    left = limit if limit is not None else -1
    while left != 0:
        page_size = 1000 if left < 0 else min(left, 1000)
        fast_page = None if fast is None else fast.list_page(uri.bucket, prefix, token, max_keys=page_size)
        if fast_page is not None:
            page = ([ObjectInfo(key, size, etag) for key, size, etag in fast_page[0]], fast_page[1])
        else:
            page = _client_page(client, uri, prefix, token, page_size)
        for info in page[0]:  # (unlimited: left stays negative)
            if left == 0:
                return
            yield info
            left -= 1
        token = page[1]
        if not token:
            return


def _client_page(client: Any, uri: S3Uri, prefix: str, token: Optional[str],
                 page_size: int) -> Tuple[List[ObjectInfo], Optional[str]]:
    params: Dict[str, Any] = {"Bucket": uri.bucket, "Prefix": prefix, "MaxKeys": page_size}
    if token:
        params["ContinuationToken"] = token
    try:
        got = client.list_objects_v2(**params)
    except Exception as exc:
        raise translate_error(exc, "s3:ListBucket", str(uri)) from exc
    found = [ObjectInfo(o["Key"], int(o.get("Size", 0)), str(o.get("ETag", "")).strip('"'),
                        o.get("LastModified")) for o in got.get("Contents", []) or []]
    return found, (got.get("NextContinuationToken") if got.get("IsTruncated") else None)


def list_objects(
    s3: S3Service,
    uri: S3Uri,
    *,
    folder: bool = True,
    limit: Optional[int] = None,
) -> List[ObjectInfo]:
    """Every object under ``uri`` (as a folder: ``s3://b/data`` lists ``data/...``, not
    ``data2/...``; ``folder=False`` lists the raw key prefix); ``limit``: at most that many.
    A list: for listings of any length, :func:`remote_files` streams. Transient failures: the
    listing starts again (the service's retry policy)."""
    return s3.retry.run(lambda: list(iter_objects(s3.client, uri, folder=folder, limit=limit)),
                        f"s3:ListBucket {uri}")


def remote_files(s3: S3Service, uri: S3Uri) -> SortedSpool:
    """``(relative path, size, etag, key)`` of the objects under the folder ``uri``, sorted by
    path, in flat memory (folder markers and write probes left out). Transient failures: the
    listing starts again in a new spool (the service's retry policy)."""
    return s3.retry.run(lambda: _spool_listing(s3, uri), f"s3:ListBucket {uri}")


def _spool_listing(s3: S3Service, uri: S3Uri) -> SortedSpool:
    prefix = uri.prefix
    spool = SortedSpool()
    try:
        for obj in iter_objects(s3.client, uri, fast=s3.fast_path(1)):
            rel = obj.key[len(prefix):]
            if not rel or rel.endswith("/") or rel.split("/")[-1].startswith(PROBE_PREFIX):
                continue
            spool.add((rel, obj.size, obj.etag, obj.key))
    except BaseException:
        spool.close()
        raise
    return spool


# ----------------------------------------------------------------------------- single objects
def b64(sha_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(sha_hex)).decode("ascii")


def put_object(
    client: Any,
    bucket: str,
    key: str,
    *,
    path: Optional[Path] = None,
    data: Optional[bytes] = None,
    sha: Optional[str] = None,
    size: Optional[int] = None,
    fast: Optional[FastPath] = None,
    retry: RetryPolicy,
    md5: Optional[str] = None,
    stream: bool = False,
) -> None:
    """PUT the file ``path`` (or the bytes ``data``) as ``key``, with its SHA-256 checked by the
    server and kept in the object's metadata (``sha``/``size`` when the caller knows them). The
    object appears only when complete (an S3 PUT, or a multipart upload, is atomic). Files up to
    256 KB are sent from memory (the fast path), up to 8 MB (or any size with ``stream``) in one
    PUT read from the file as it is sent (memory stays flat), larger ones in parallel parts (each
    part's SHA-256 checked by the server). Transient failures are retried as a whole (``retry``)."""
    retry.run(
        lambda: _put_once(client, bucket, key, path=path, data=data, sha=sha, size=size, fast=fast,
                          md5=md5, stream=stream),
        f"s3:PutObject s3://{bucket}/{key}")


def _put_once(client: Any, bucket: str, key: str, *, path: Optional[Path], data: Optional[bytes],
              sha: Optional[str], size: Optional[int], fast: Optional[FastPath], md5: Optional[str],
              stream: bool) -> None:
    resource = f"s3://{bucket}/{key}"
    if sha is None or size is None:
        if data is not None:
            sha, size = hashlib.sha256(data).hexdigest(), len(data)
        elif path is not None:
            sha, size = sha256_file(path), path.stat().st_size
        else:
            raise ValueError("put_object needs path or data")
    checksum = b64(sha)
    args: Dict[str, Any] = {
        "Bucket": bucket,
        "Key": key,
        "ChecksumSHA256": checksum,
        "Metadata": {"sha256": sha},
    }
    if size <= IN_MEMORY and data is None and path is not None and not stream:
        data = path.read_bytes()
    if data is not None and fast is not None and fast.put(bucket, key, data, sha, checksum, md5):
        return
    try:
        if data is not None:
            client.put_object(Body=data, **args)
        elif (stream or size <= SMALL_FILE) and size <= SINGLE_PUT_LIMIT:
            # one PUT read from the file as it is sent: a 5 MB label file of 100,000 crops read
            # whole was the peak of a push (64 threads could hold 64 such files)
            assert path is not None
            with open(path, "rb") as fh:
                client.put_object(Body=fh, **args)
        else:
            assert path is not None
            extra = {"Metadata": {"sha256": sha}, "ChecksumAlgorithm": "SHA256"}
            client.upload_file(str(path), bucket, key, ExtraArgs=extra, Config=_transfer_config(size))
            if sha256_file(path) != sha:  # parts are checked one by one: was the whole file stable?
                client.delete_object(Bucket=bucket, Key=key)
                raise IntegrityError(
                    f"{path} changed while it was being uploaded to {resource}; the object was "
                    "removed again.", "rerun the push when nothing is writing to the folder.")
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


def upload_file(s3: S3Service, path: Any, uri: S3Uri) -> None:
    """Upload one file, with its SHA-256 checked by the server and kept in the object's metadata.
    The object appears only when complete (an S3 PUT is atomic). A key ending in '/' gets the
    file's name appended."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found.", "check the path.", path=str(path))
    if not uri.key or uri.key.endswith("/"):
        uri = uri.join(path.name)
    put_object(s3.client, uri.bucket, uri.key, path=path, retry=s3.retry)


def _expected_from_etag(etag: str, response: Dict[str, Any]) -> Optional[str]:
    """The MD5 an ETag stands for, when it is one (single-part, not SSE-KMS/SSE-C)."""
    etag = etag.strip('"')
    if "-" in etag or len(etag) != 32:
        return None
    if response.get("ServerSideEncryption") == "aws:kms" or response.get("SSECustomerAlgorithm"):
        return None
    return etag.lower()


def download_object(
    client: Any,
    bucket: str,
    key: str,
    dest: Path,
    *,
    expected_sha256: Optional[str] = None,
    expected_size: Optional[int] = None,
    fast: Optional[FastPath] = None,
    retry: RetryPolicy,
) -> int:
    """Stream ``key`` to a temporary name beside ``dest``, verify it, rename it. Returns its size.
    Transient failures (a cut connection, a body cut short) are retried (``retry``); the fast
    path is tried only the first time."""
    tries = [0]

    def once() -> int:
        tries[0] += 1
        return _download_once(client, bucket, key, dest, expected_sha256, expected_size,
                              fast if tries[0] == 1 else None)

    return retry.run(once, f"s3:GetObject s3://{bucket}/{key}")


def _new_part(tmp: Path) -> IO[bytes]:
    """The download's temporary file, new (never through a link planted there); its folder
    is made the first time it is missing."""
    try:
        return open_stream(tmp, new=True)
    except FileNotFoundError:
        tmp.parent.mkdir(parents=True, exist_ok=True)
        return open_stream(tmp, new=True)


def _download_once(
    client: Any,
    bucket: str,
    key: str,
    dest: Path,
    expected_sha256: Optional[str],
    expected_size: Optional[int],
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
    return store_download(resource, response, body.iter_chunks(CHUNK), dest, expected_sha256, expected_size)


def store_download(resource: str, response: Dict[str, Any], chunks: Iterable[bytes], dest: Path,
                   expected_sha256: Optional[str], expected_size: Optional[int]) -> int:
    """Write a GET's body (``response``: its fields as boto3 names them) to a temporary name
    beside ``dest``, verify it (size, sha256, else the MD5 ETag), rename it. Returns its size."""
    tmp = dest.parent / f".{dest.name}.{secrets.token_hex(4)}{PART_SUFFIX}"
    sha = hashlib.sha256()
    need_md5 = not expected_sha256 and not (response.get("Metadata") or {}).get("sha256")
    md5 = hashlib.md5() if need_md5 else None  # noqa: S324 - compared with the ETag
    announced = response.get("ContentLength")
    size = 0
    try:
        try:
            with _new_part(tmp) as fh:
                for chunk in chunks:
                    fh.write(chunk)
                    sha.update(chunk)
                    if md5 is not None:
                        md5.update(chunk)
                    size += len(chunk)
        except OSError as exc:
            raise StorageError(
                f"Cannot write {dest}: {exc}.", "check free disk space and permissions."
            ) from exc
        except Exception as exc:
            raise translate_error(exc, "s3:GetObject", resource) from exc
        if isinstance(announced, int) and size < announced:
            raise TransferCutShort(f"the download of {resource} was cut short ({size} of {announced} "
                                   "bytes arrived).", "check the network, then rerun.")
        _verify(resource, dest, response, size, sha, md5, expected_sha256, expected_size)
        move(tmp, dest)
    except BaseException:
        remove_quietly(tmp)
        raise
    return size


def _verify(resource: str, dest: Path, response: Dict[str, Any], size: int, sha: Any, md5: Any,
            expected_sha256: Optional[str], expected_size: Optional[int]) -> None:
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


def download_file(s3: S3Service, uri: S3Uri, path: Any, *, expected_sha256: Optional[str] = None) -> None:
    """Download one object to ``path`` (a temporary name, renamed when verified)."""
    download_object(s3.client, uri.bucket, uri.key, Path(path), expected_sha256=expected_sha256,
                    retry=s3.retry)


def read_object(client: Any, bucket: str, key: str, *, retry: RetryPolicy) -> bytes:
    """The bytes of a small object (a manifest), unverified."""
    def once() -> bytes:
        try:
            return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except Exception as exc:
            raise translate_error(exc, "s3:GetObject", f"s3://{bucket}/{key}") from exc

    return retry.run(once, f"s3:GetObject s3://{bucket}/{key}")


def delete_keys(client: Any, bucket: str, keys: List[str], *, retry: RetryPolicy) -> None:
    for start in range(0, len(keys), 1000):
        batch = keys[start : start + 1000]

        def once(batch: List[str] = batch) -> Any:
            try:
                return client.delete_objects(
                    Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            except Exception as exc:
                raise translate_error(exc, "s3:DeleteObject", f"s3://{bucket}/{batch[0]}") from exc

        response = retry.run(once, f"s3:DeleteObject s3://{bucket}/{batch[0]}")
        errors = response.get("Errors") or []
        if errors:
            from botocore.exceptions import ClientError  # boto stays out of `rectrain --help`'s start-up

            first = errors[0]
            denied = ClientError(
                {"Error": {"Code": first.get("Code"), "Message": first.get("Message")}}, "DeleteObjects"
            )
            raise translate_error(denied, "s3:DeleteObject", f"s3://{bucket}/{first.get('Key')}") from denied


def delete_prefix(s3: S3Service, uri: S3Uri) -> int:
    """Delete every object under the folder ``uri``. Returns how many."""
    keys = [o.key for o in list_objects(s3, uri)]
    delete_keys(s3.client, uri.bucket, keys, retry=s3.retry)
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


__all__ = [
    "PROBE_PREFIX",
    "ObjectInfo",
    "iter_objects",
    "list_objects",
    "remote_files",
    "put_object",
    "upload_file",
    "download_object",
    "download_file",
    "read_object",
    "delete_keys",
    "delete_prefix",
    "write_probe",
]
