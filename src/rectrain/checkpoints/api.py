"""Checkpoint operations shared by the CLI, the notebook and the SageMaker entry point."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, List, Optional, Union

from rectrain.checkpoints.local import (
    MARKER,
    PROTECTED,
    CheckpointInfo,
    engine_prefix,
    read_marker,
    scan_local,
    snapshot,
    snapshot_markers,
)
from rectrain.checkpoints.remote import delete_remote, download_snapshot, list_remote, upload_snapshot
from rectrain.checkpoints.run_state import STATE_FILE, RunState
from rectrain.errors import UserError
from rectrain.storage.s3 import make_client

SNAPSHOTS = "snapshots"


def _is_s3(source: Union[str, Path]) -> bool:
    return str(source).startswith("s3://")


def _checkpoint_dir(path: Union[str, Path]) -> Path:
    """A run dir (holding checkpoints/) or a checkpoint dir itself."""
    p = Path(path)
    if (p / "checkpoints").is_dir() and not list(p.glob("*.states")):
        return p / "checkpoints"
    return p


def _sub_epochs(checkpoint_dir: Path) -> int:
    for candidate in (checkpoint_dir / STATE_FILE, checkpoint_dir.parent / STATE_FILE):
        state = RunState.load(candidate)
        if state is not None:
            return max(1, state.sub_epochs)
    return 1


def list_checkpoints(source: Union[str, Path], *, endpoint_url: Optional[str] = None,
                     client: Any = None) -> List[CheckpointInfo]:
    """Complete checkpoints of a run dir, a checkpoint dir or an s3:// prefix, newest first.
    Local: the engine's files (complete ones), snapshots/ and best_of_run/ (verified copies)."""
    if _is_s3(source):
        return list_remote(str(source), client=client, endpoint_url=endpoint_url)
    base = _checkpoint_dir(source)
    if not base.is_dir():
        raise UserError(f"{base}: no such folder.", "give a run folder, a checkpoint folder or s3://...")
    found = {i.name: i for i in scan_local(base, sub_epochs=_sub_epochs(base))}
    for _, info in snapshot_markers(base / SNAPSHOTS):
        found.setdefault(info.name, info)
    return sorted(found.values(), key=lambda i: (i.global_step, i.time), reverse=True)


def sync_recognition_checkpoints_to_s3(checkpoint_dir: Union[str, Path], s3_uri: str, *,
                                       endpoint_url: Optional[str] = None) -> List[str]:
    """Upload every complete checkpoint of ``checkpoint_dir`` that S3 does not already hold at
    the same step (marker last). Returns the keys written."""
    client = make_client(endpoint_url)
    base = _checkpoint_dir(checkpoint_dir)
    remote = {i.name: i for i in list_remote(s3_uri, client=client)}
    keys: List[str] = []
    snaps = base / SNAPSHOTS
    k = _sub_epochs(base)
    local = scan_local(base, sub_epochs=k)
    newer = [(i, remote[i.name]) for i in local
             if i.name in remote and remote[i.name].global_step > i.global_step]
    if newer:  # checked before anything is uploaded
        mine, theirs = newer[0]
        raise UserError(
            f"{s3_uri} holds a newer {mine.name} (step {theirs.global_step}) than {base} (step "
            f"{mine.global_step}): pushing would replace it"
            + (f" (and {len(newer) - 1} more)" if len(newer) > 1 else "") + ".",
            "push to another prefix (each run its own --checkpoint-s3), or pull the newer one "
            "first: `rectrain ckpt pull`.")
    for info in local:
        if info.name == "best_of_run":
            folder = base / "best_of_run"
        else:
            folder = snaps / info.name
            marker = read_marker(folder / MARKER)
            if marker is None or marker.global_step != info.global_step:
                snapshot(base, info.name, snaps, sub_epochs=k)
        have = remote.get(info.name)
        if have is not None and have.global_step == info.global_step \
                and have.metric == info.metric:
            continue
        keys += upload_snapshot(folder, s3_uri, client=client)
    return keys


def download_recognition_checkpoints_from_s3(s3_uri: str, checkpoint_dir: Union[str, Path], *,
                                             name: Optional[str] = None,
                                             endpoint_url: Optional[str] = None) -> Path:
    """Download one complete checkpoint (``name``, default: the newest epoch-end one) into
    ``checkpoint_dir/<name>/``, verified; returns its engine prefix (for Global.checkpoints /
    export), e.g. ``DIR/latest/latest``."""
    client = make_client(endpoint_url)
    if name is None:
        infos = [i for i in list_remote(s3_uri, client=client)
                 if i.name not in ("best_accuracy", "best_of_run")]
        if not infos:
            raise UserError(f"{s3_uri} holds no complete checkpoint.",
                            "check the prefix with `rectrain ckpt list`.")
        name = infos[0].name
    dest = Path(checkpoint_dir)
    dest.mkdir(parents=True, exist_ok=True)
    folder = download_snapshot(s3_uri, name, dest, client=client)
    return engine_prefix(folder)


def prune_checkpoints(source: Union[str, Path], keep_last: int, *, endpoint_url: Optional[str] = None,
                      dry_run: bool = False) -> List[str]:
    """Remove ``iter_epoch_N`` checkpoints except the newest ``keep_last``; never ``latest``,
    ``best_accuracy`` or ``best_of_run``. Returns the names removed."""
    if keep_last < 0:
        raise UserError("--keep-last must be 0 or more.", "use e.g. --keep-last 3.")
    infos = list_checkpoints(source, endpoint_url=endpoint_url)
    periodic = sorted((i for i in infos if i.name not in PROTECTED and i.name.startswith("iter_epoch_")),
                      key=lambda i: i.global_step, reverse=True)
    doomed = [i.name for i in periodic[keep_last:]]
    if dry_run:
        return doomed
    if _is_s3(source):
        for name in doomed:
            delete_remote(str(source), name, endpoint_url=endpoint_url)
        return doomed
    base = _checkpoint_dir(source)
    for name in doomed:
        shutil.rmtree(base / SNAPSHOTS / name, ignore_errors=True)
        for suffix in (".states", ".pdparams", ".pdopt"):  # states first: no longer "complete"
            try:
                (base / f"{name}{suffix}").unlink()
            except FileNotFoundError:
                pass
    return doomed
