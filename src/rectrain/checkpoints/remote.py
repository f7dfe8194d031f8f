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
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from rectrain.checkpoints.local import MARKER, CheckpointInfo, read_marker, verify_snapshot
from rectrain.errors import StorageError, UserError
from rectrain.logs import get_logger
from rectrain.storage.objects import delete_prefix, download_file, list_objects, upload_file
from rectrain.storage.s3 import S3Uri, make_client

log = get_logger("checkpoints")


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
    except Exception as exc:  # noqa: BLE001 - a missing object is fine; others show up below
        log.debug("could not delete %s: %s", marker_uri, exc)
    keys: List[str] = []
    for fname in sorted(info.files):
        uri = dest.join(fname)
        upload_file(d / fname, str(uri), client=client)
        keys.append(uri.key)
    upload_file(d / MARKER, str(marker_uri), client=client)
    keys.append(marker_uri.key)
    return keys


def read_remote_marker(s3_uri: str, *, client: Any = None,
                       endpoint_url: Optional[str] = None) -> Optional[CheckpointInfo]:
    client = _client(client, endpoint_url)
    uri = S3Uri.parse(s3_uri)
    try:
        body = client.get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read()
        data = json.loads(body.decode("utf-8"))
    except Exception:  # noqa: BLE001 - missing or unreadable marker: not complete
        return None
    info = CheckpointInfo.from_dict(data)
    info.location = str(uri).rsplit("/", 1)[0]
    return info


def list_remote(s3_prefix: str, *, client: Any = None,
                endpoint_url: Optional[str] = None) -> List[CheckpointInfo]:
    """Complete checkpoints (those with a marker) under ``s3_prefix``, newest step first."""
    client = _client(client, endpoint_url)
    base = S3Uri.parse(s3_prefix)
    out: List[CheckpointInfo] = []
    objects = list_objects(str(base), client=client)
    sizes: Dict[str, int] = {}
    for obj in objects:
        rel = obj.key[len(base.prefix):] if obj.key.startswith(base.prefix) else obj.key
        parts = rel.split("/")
        if len(parts) == 2:
            sizes[parts[0]] = sizes.get(parts[0], 0) + int(obj.size)
    for obj in objects:
        rel = obj.key[len(base.prefix):] if obj.key.startswith(base.prefix) else obj.key
        parts = rel.split("/")
        if len(parts) == 2 and parts[1] == MARKER:
            info = read_remote_marker(str(S3Uri(base.bucket, obj.key)), client=client)
            if info is not None:
                out.append(info)
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
    _refuse_replacing(dest, info, str(src))
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


def _refuse_replacing(dest: Path, remote: CheckpointInfo, source: str) -> None:
    """A pull replaces ``dest`` only when it is the same checkpoint or none: never a folder
    rectrain did not write (no marker), never another checkpoint of that name (a newer local
    ``latest`` would be lost)."""
    if not dest.exists() and not dest.is_symlink():
        return
    if not dest.is_dir():
        raise UserError(f"{dest} is a file, not a checkpoint folder.",
                        "pull into another folder, or move that file away.")
    local = read_marker(dest / MARKER) if (dest / MARKER).is_file() else None
    if local is None:
        if not any(dest.iterdir()):
            return
        raise UserError(f"{dest} exists and is not a complete checkpoint written by rectrain (no "
                        f"{MARKER}); pulling {source} would replace its files.",
                        "pull into another folder, or move that folder away yourself.")
    if (local.global_step, local.run_id) != (remote.global_step, remote.run_id):
        raise UserError(f"{dest} holds another checkpoint {dest.name} (step {local.global_step}) "
                        f"than {source} (step {remote.global_step}); pulling would replace it.",
                        "pull into another folder (e.g. a new run folder), or move the local one "
                        "away yourself.")


def delete_remote(s3_prefix: str, name: str, *, client: Any = None,
                  endpoint_url: Optional[str] = None) -> None:
    """Delete one checkpoint: marker first, then the files."""
    client = _client(client, endpoint_url)
    uri = S3Uri.parse(s3_prefix).join(name)
    marker = uri.join(MARKER)
    client.delete_object(Bucket=marker.bucket, Key=marker.key)
    delete_prefix(str(uri) + "/", client=client)
