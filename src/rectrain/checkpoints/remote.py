"""Checkpoints in S3, the same layout as ``<checkpoint_dir>/snapshots/`` (see ``local``):

- ``<prefix>/s<step>-<name>-<id>/<files>`` and ``.../_COMPLETE.json``: one immutable folder per
  save; the marker (every file's size and sha256) is uploaded LAST, so a folder counts only
  once every file is there; it is deleted FIRST.
- ``<prefix>/<name>.json``: the pointer saying which folder ``latest``, ``best_accuracy``,
  ``best_of_run`` or ``iter_epoch_N`` is now, uploaded after its folder.

Only "not found" (404 / NoSuchKey) means absent; any other error is raised, translated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from rectrain.checkpoints.local import (
    MARKER,
    NAME_RE,
    POINTER_SUFFIX,
    CheckpointInfo,
    folder_name_of,
    parse_marker,
    pointer_path,
    read_marker,
    verify_snapshot,
)
from rectrain.errors import IntegrityError, StorageError, UserError
from rectrain.logs import get_logger
from rectrain.outputs import remove_tree
from rectrain.storage.aws_errors import error_code
from rectrain.storage.objects import delete_prefix, download_file, list_objects, upload_file
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import S3Service

log = get_logger("checkpoints")

NOT_FOUND = ("NoSuchKey", "404", "NotFound")


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


def upload_snapshot(s3: S3Service, snapshot_dir: Union[str, Path], prefix: S3Uri,
                    copies: Optional[Dict[str, str]] = None) -> List[str]:
    """Upload a snapshot folder to ``<prefix>/<folder name>/``: every file, then the marker
    (a folder name is never reused, so nothing there is replaced). Returns the keys written.

    ``copies`` (sha256 -> key in the same bucket, kept by the caller across uploads): a file
    whose bytes are already in S3 (``iter_epoch_N`` saved with ``latest``, ``best_of_run``
    copied from ``best_accuracy``) is copied there by the server instead of going up again;
    a source deleted meanwhile is uploaded after all."""
    d = Path(snapshot_dir)
    info = verify_snapshot(d)
    dest = prefix.join(d.name)
    keys: List[str] = []
    for fname in sorted(info.files):
        uri = dest.join(fname)
        _copy_or_upload(s3, d / fname, uri, str(info.files[fname].get("sha256") or ""), copies)
        keys.append(uri.key)
    marker_uri = dest.join(MARKER)
    upload_file(s3, d / MARKER, marker_uri)
    keys.append(marker_uri.key)
    return keys


def _copy_or_upload(s3: S3Service, path: Path, uri: S3Uri, sha: str,
                    copies: Optional[Dict[str, str]]) -> None:
    source = copies.get(sha) if copies is not None and sha else None
    if source is not None:
        try:  # the metadata (the sha256 rectrain keeps with each object) is copied with it
            s3.call("copy_object", "s3:PutObject", uri, Bucket=uri.bucket, Key=uri.key,
                    CopySource={"Bucket": uri.bucket, "Key": source})
            return
        except StorageError as exc:
            if not is_not_found(exc):
                raise
            assert copies is not None
            copies.pop(sha, None)
    upload_file(s3, path, uri)
    if copies is not None and sha:
        copies[sha] = uri.key


def upload_pointer(s3: S3Service, snap_root: Union[str, Path], name: str, prefix: S3Uri) -> str:
    """Upload ``<snap_root>/<name>.json`` to ``<prefix>/<name>.json`` (after its folder)."""
    uri = prefix.join(name + POINTER_SUFFIX)
    upload_file(s3, pointer_path(snap_root, name), uri)
    return uri.key


def _read_json(s3: S3Service, uri: S3Uri) -> Optional[Dict[str, Any]]:
    try:
        body = s3.read_bytes(uri)
    except StorageError as exc:
        if is_not_found(exc):
            return None
        raise
    try:
        data = json.loads(body.decode("utf-8"))
        parse_marker(data)
    except (ValueError, TypeError) as exc:
        raise IntegrityError(f"{uri} is damaged or forged ({exc}).",
                             "that checkpoint cannot be used; resume from another one "
                             "(`rectrain ckpt list`) or delete it.") from exc
    return data


def read_remote_marker(s3: S3Service, uri: S3Uri) -> Optional[CheckpointInfo]:
    """The marker at ``uri``; ``None`` only when it does not exist (404 / NoSuchKey). Any
    other error reading it is raised (translated: the action and the fix), and a marker that
    is not valid JSON raises :class:`IntegrityError`: neither means "not there"."""
    data = _read_json(s3, uri)
    if data is None:
        return None
    info = parse_marker(data)
    info.location = str(uri).rsplit("/", 1)[0]
    return info


def read_remote_pointer(s3: S3Service, base: S3Uri, name: str) -> Optional[Tuple[str, CheckpointInfo]]:
    """``(folder name, info)`` of ``<base>/<name>.json``; ``None`` when there is none."""
    data = _read_json(s3, base.join(name + POINTER_SUFFIX))
    if data is None:
        return None
    folder = str(data.get("folder") or "")
    if folder_name_of(folder) is None:
        raise IntegrityError(f"{base.join(name + POINTER_SUFFIX)} names no snapshot folder.",
                             "push the checkpoint again (`rectrain ckpt push`).")
    info = parse_marker(data)
    info.name, info.location = name, str(base.join(folder))
    return folder, info


@dataclass
class RemoteFolder:
    """One snapshot folder found under an S3 prefix: its marker, or why it has none."""

    name: str  # the folder's name (s<step>-<checkpoint name>-<id>)
    uri: str
    files: int
    info: Optional[CheckpointInfo] = None
    problem: str = ""  # why it is not complete ("" when the marker was read)


def _top_level(s3: S3Service, base: S3Uri) -> Tuple[Dict[str, List[str]], List[str]]:
    """``({folder: [file, ...]}, [top-level file, ...])`` under ``base``."""
    folders: Dict[str, List[str]] = {}
    files: List[str] = []
    for obj in list_objects(s3, base):
        rel = obj.key[len(base.prefix):] if obj.key.startswith(base.prefix) else obj.key
        parts = rel.split("/")
        if len(parts) == 2 and parts[1]:
            folders.setdefault(parts[0], []).append(parts[1])
        elif len(parts) == 1 and parts[0]:
            files.append(parts[0])
    return folders, files


def scan_remote(s3: S3Service, base: S3Uri) -> List[RemoteFolder]:
    """Every snapshot folder under ``base``: complete ones with their marker, the others
    with the reason. Listing or reading errors other than "not found" are raised."""
    folders, _ = _top_level(s3, base)
    out: List[RemoteFolder] = []
    for folder, files in sorted(folders.items()):
        if folder_name_of(folder) is None and not (NAME_RE.match(folder) and MARKER in files):
            continue  # (<name>/ with a marker: the layout before issue 13, still resumable)
        item = RemoteFolder(folder, str(base.join(folder)), len(files))
        if MARKER not in files:
            item.problem = (f"{len(files)} file(s) but no {MARKER} (an upload was interrupted)")
        else:
            try:
                info = read_remote_marker(s3, base.join(folder, MARKER))
            except IntegrityError as exc:
                item.problem = exc.message
            else:
                if info is None:
                    item.problem = f"{MARKER} vanished while listing"
                else:
                    item.info = info
        out.append(item)
    return out


def list_remote(s3: S3Service, prefix: S3Uri) -> List[CheckpointInfo]:
    """The named checkpoints (``<name>.json`` pointers: latest, best_accuracy, best_of_run,
    iter_epoch_N) under ``prefix``, newest step first; ``location`` is the folder.
    Damaged pointers are logged and left out; access errors are raised."""
    _, files = _top_level(s3, prefix)
    out: List[CheckpointInfo] = []
    for fname in sorted(files):
        name = fname[: -len(POINTER_SUFFIX)] if fname.endswith(POINTER_SUFFIX) else ""
        if not NAME_RE.match(name):
            continue
        try:
            got = read_remote_pointer(s3, prefix, name)
        except IntegrityError as exc:
            log.warning("%s", exc)
            continue
        if got is not None:
            out.append(got[1])
    out.sort(key=lambda i: (i.global_step, i.time), reverse=True)
    return out


def download_snapshot(s3: S3Service, prefix: S3Uri, folder: str, dest_root: Union[str, Path], *,
                      dest_name: Optional[str] = None) -> Path:
    """Download the snapshot folder ``<prefix>/<folder>/`` into ``dest_root/<dest_name or
    folder>/`` (files, then the marker) and verify it against its marker."""
    src = prefix.join(folder)
    info = read_remote_marker(s3, src.join(MARKER))
    if info is None:
        raise StorageError(f"{src} is not a complete checkpoint (no {MARKER}).",
                           "list the complete ones with `rectrain ckpt list " f"{prefix}`.")
    dest = Path(dest_root) / (dest_name or folder)
    if (dest / MARKER).exists():
        try:
            if verify_snapshot(dest).files == info.files:
                return dest  # already here, verified
        except IntegrityError:
            pass
    if dest_name is not None:  # a folder the user names (ckpt pull): never another checkpoint
        _refuse_replacing(dest, info, str(src))
    if dest.exists():
        remove_tree(dest)
    dest.mkdir(parents=True)
    try:
        for fname, meta in info.files.items():
            target = dest / fname
            if target.resolve().parent != dest.resolve():  # parse_marker allows basenames only
                raise IntegrityError(f"{src.join(MARKER)} names {fname!r}, outside {dest}.",
                                     "use another checkpoint (`rectrain ckpt list`).")
            download_file(s3, src.join(fname), target, expected_sha256=meta["sha256"])
        download_file(s3, src.join(MARKER), dest / MARKER)
        verify_snapshot(dest)
    except BaseException:
        remove_tree(dest, ignore_errors=True)
        raise
    return dest


def download_named(s3: S3Service, prefix: S3Uri, name: str, dest_root: Union[str, Path]) -> Path:
    """The folder ``<name>.json`` points at, downloaded into ``dest_root/<name>/``."""
    got = read_remote_pointer(s3, prefix, name)
    if got is None:
        raise StorageError(f"{prefix} has no checkpoint named {name}.",
                           f"list the complete ones with `rectrain ckpt list {prefix}`.")
    return download_snapshot(s3, prefix, got[0], dest_root, dest_name=name)


def delete_remote_folder(s3: S3Service, prefix: S3Uri, folder: str) -> None:
    """Delete one snapshot folder in S3: its marker first (it stops counting), then the files."""
    uri = prefix.join(folder)
    s3.delete(uri.join(MARKER))
    delete_prefix(s3, uri)


def remote_folders_of(s3: S3Service, prefix: S3Uri, name: str) -> List[str]:
    """The snapshot folders of checkpoint ``name`` in S3 (complete or not)."""
    folders, _ = _top_level(s3, prefix)
    return sorted(f for f in folders if (folder_name_of(f) or (0, ""))[1] == name)


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


def delete_remote(s3: S3Service, prefix: S3Uri, name: str) -> None:
    """Delete the named checkpoint: its pointer first, then every folder of that name."""
    s3.delete(prefix.join(name + POINTER_SUFFIX))
    for folder in remote_folders_of(s3, prefix, name):
        delete_remote_folder(s3, prefix, folder)
