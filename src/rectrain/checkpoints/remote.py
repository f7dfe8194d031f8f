"""Checkpoints in S3: ``<prefix>/<name>/<files>`` plus ``<prefix>/<name>/_COMPLETE.json``.

A checkpoint counts as present in S3 only with its marker, and the marker is uploaded LAST
(after every file) and deleted FIRST when a checkpoint of the same name (``latest``,
``best_accuracy``) is replaced, so a reader never sees a marker beside half-replaced files.
The marker lists every file with its size and sha256; downloads are checked against it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from botocore.exceptions import BotoCoreError, ClientError

from rectrain.checkpoints.local import MARKER, NAME_RE, CheckpointInfo, verify_snapshot
from rectrain.errors import IntegrityError, StorageError
from rectrain.logs import get_logger
from rectrain.storage.s3 import S3Uri, error_code, make_client, translate_error
from rectrain.storage.transfer import delete_prefix, download_file, list_objects, upload_file

log = get_logger("checkpoints")

NOT_FOUND = ("NoSuchKey", "404", "NotFound")


def _client(client: Any, endpoint_url: Optional[str]) -> Any:
    if client is not None:
        return client
    return make_client(endpoint_url)


def upload_snapshot(snapshot_dir: Union[str, Path], s3_prefix: str, *, client: Any = None,
                    endpoint_url: Optional[str] = None, name: Optional[str] = None) -> List[str]:
    """Upload a snapshot folder to ``<s3_prefix>/<name>/`` (``name``: the folder's name by
    default): files, then the marker; returns the keys written."""
    client = _client(client, endpoint_url)
    d = Path(snapshot_dir)
    info = verify_snapshot(d)
    dest = S3Uri.parse(s3_prefix).join(name or d.name)
    marker_uri = dest.join(MARKER)
    try:  # retract the old marker first: from now on this name is "not complete"
        client.delete_object(Bucket=marker_uri.bucket, Key=marker_uri.key)
    except (BotoCoreError, ClientError, OSError) as exc:
        if not is_not_found(exc):  # files under a stale marker would read as complete
            raise translate_error(exc, "s3:DeleteObject", str(marker_uri)) from exc
    keys: List[str] = []
    for fname in sorted(info.files):
        uri = dest.join(fname)
        upload_file(d / fname, str(uri), client=client)
        keys.append(uri.key)
    upload_file(d / MARKER, str(marker_uri), client=client)
    keys.append(marker_uri.key)
    return keys


def is_not_found(exc: BaseException) -> bool:
    """True only for S3's "not found" (404 / NoSuchKey), looked up through the cause chain of a
    translated error. Everything else (AccessDenied, a timeout) is NOT "absent"."""
    seen = 0
    cur: Optional[BaseException] = exc
    while cur is not None and seen < 5:
        if error_code(cur) in NOT_FOUND:
            return True
        cur = cur.__cause__
        seen += 1
    return False


def read_remote_marker(s3_uri: str, *, client: Any = None,
                       endpoint_url: Optional[str] = None) -> Optional[CheckpointInfo]:
    """The marker at ``s3_uri``; ``None`` only when it does not exist (404 / NoSuchKey). Any
    other error reading it is raised (translated: the action and the fix), and a marker that
    is not valid JSON raises :class:`IntegrityError`: neither means "not there"."""
    client = _client(client, endpoint_url)
    uri = S3Uri.parse(s3_uri)
    try:
        body = client.get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read()
    except (BotoCoreError, ClientError, OSError) as exc:
        if is_not_found(exc):
            return None
        raise translate_error(exc, "s3:GetObject", str(uri)) from exc
    try:
        data = json.loads(body.decode("utf-8"))
        info = CheckpointInfo.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise IntegrityError(f"{uri}: the completion marker is damaged ({exc}).",
                             "that checkpoint cannot be used; resume from another one "
                             "(`rectrain ckpt list`) or delete it.") from exc
    info.location = str(uri).rsplit("/", 1)[0]
    return info


@dataclass
class RemoteFolder:
    """One checkpoint folder found under an S3 prefix: its marker, or why it has none."""

    name: str
    uri: str
    files: int
    info: Optional[CheckpointInfo] = None
    problem: str = ""  # why it is not complete ("" when the marker was read)


def scan_remote(s3_prefix: str, *, client: Any = None,
                endpoint_url: Optional[str] = None) -> List[RemoteFolder]:
    """Every checkpoint-like folder (``<prefix>/<name>/...``) under ``s3_prefix``: complete
    ones with their marker, the others with the reason. Listing or reading errors other than
    "not found" are raised."""
    client = _client(client, endpoint_url)
    base = S3Uri.parse(s3_prefix)
    folders: Dict[str, List[str]] = {}
    for obj in list_objects(str(base), client=client):
        rel = obj.key[len(base.prefix):] if obj.key.startswith(base.prefix) else obj.key
        parts = rel.split("/")
        if len(parts) == 2 and parts[1] and NAME_RE.match(parts[0]):
            folders.setdefault(parts[0], []).append(parts[1])
    out: List[RemoteFolder] = []
    for name, files in sorted(folders.items()):
        uri = str(base.join(name))
        folder = RemoteFolder(name, uri, len(files))
        if MARKER not in files:
            folder.problem = (f"{len(files)} file(s) but no {MARKER} (an upload was interrupted "
                              "or a replacement is in progress)")
        else:
            try:
                info = read_remote_marker(str(base.join(name, MARKER)), client=client)
            except IntegrityError as exc:
                folder.problem = exc.message
            else:
                if info is None:
                    folder.problem = f"{MARKER} vanished while listing"
                else:
                    folder.info = info
        out.append(folder)
    return out


def list_remote(s3_prefix: str, *, client: Any = None,
                endpoint_url: Optional[str] = None) -> List[CheckpointInfo]:
    """Complete checkpoints (those with a readable marker) under ``s3_prefix``, newest step
    first. Damaged markers are logged and left out; access errors are raised."""
    out: List[CheckpointInfo] = []
    for folder in scan_remote(s3_prefix, client=client, endpoint_url=endpoint_url):
        if folder.info is not None:
            out.append(folder.info)
        elif MARKER in folder.problem and "damaged" in folder.problem:
            log.warning("%s", folder.problem)
    out.sort(key=lambda i: (i.global_step, i.time), reverse=True)
    return out


def download_snapshot(s3_prefix: str, name: str, dest_root: Union[str, Path], *,
                      client: Any = None, endpoint_url: Optional[str] = None) -> Path:
    """Download checkpoint ``name`` into ``dest_root/<name>/`` and verify it against its marker."""
    client = _client(client, endpoint_url)
    src = S3Uri.parse(s3_prefix).join(name)
    info = read_remote_marker(str(src.join(MARKER)), client=client)
    if info is None:
        raise StorageError(f"{src} is not a complete checkpoint (no {MARKER}).",
                           "list the complete ones with `rectrain ckpt list " f"{s3_prefix}`.")
    dest = Path(dest_root) / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=str(Path(dest_root))))
    try:
        for fname, meta in info.files.items():
            download_file(str(src.join(fname)), tmp / fname, client=client,
                          expected_sha256=meta.get("sha256"))
        download_file(str(src.join(MARKER)), tmp / MARKER, client=client)
        verify_snapshot(tmp)
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def delete_remote(s3_prefix: str, name: str, *, client: Any = None,
                  endpoint_url: Optional[str] = None) -> None:
    """Delete one checkpoint: marker first, then the files."""
    client = _client(client, endpoint_url)
    uri = S3Uri.parse(s3_prefix).join(name)
    marker = uri.join(MARKER)
    client.delete_object(Bucket=marker.bucket, Key=marker.key)
    delete_prefix(str(uri) + "/", client=client)
