"""Resuming a run: which checkpoint to continue from, the copy the engine loads, and the run's
history (run-state.json, metrics.jsonl, problem-log.md) brought back onto a fresh machine.

Where the history lives between attempts:
- in S3 beside the checkpoints (``--checkpoint-s3``; uploaded by :class:`CheckpointSync`);
- in ``<checkpoint_dir>/run/`` when the checkpoints live outside the run folder (SageMaker's
  /opt/ml/checkpoints, which SageMaker itself syncs and restores): :func:`mirror_run_files`.
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path
from typing import List, Optional, Tuple

from rectrain.checkpoints.local import (
    ENGINE_NAME_RE,
    MARKER,
    SUFFIXES,
    CheckpointInfo,
    engine_prefix,
    info_from_states,
    read_states,
    scan_local,
    snapshot_markers,
    verify_snapshot,
)
from rectrain.checkpoints.remote import download_snapshot, list_remote, read_remote_marker
from rectrain.checkpoints.run_state import STATE_FILE
from rectrain.errors import IntegrityError, UserError
from rectrain.logs import get_logger
from rectrain.storage.objects import download_file
from rectrain.storage.s3 import S3Uri

log = get_logger("training")

MIRRORED = ("metrics.jsonl", STATE_FILE, "problem-log.md")


def find_resume_checkpoint(checkpoint_dir: Path, checkpoint_s3: Optional[str] = None, *,
                           endpoint_url: Optional[str] = None, sub_epochs: int = 1,
                           run_id: str = "") -> Optional[Path]:
    """The newest complete epoch-end checkpoint (``latest`` / ``iter_epoch_N``), local or in S3,
    as a ``Global.checkpoints`` prefix. S3 ones are downloaded and verified first.
    ``best_accuracy`` is never resumed from: it is saved mid-epoch and the engine would skip
    the rest of that epoch. With ``run_id``, checkpoints written by another run are ignored."""
    candidates: List[tuple] = []  # (global_step, is_local, kind, ref)

    def other_run(info: CheckpointInfo) -> bool:
        return bool(run_id and info.run_id and info.run_id != run_id)

    snap_root = checkpoint_dir / "snapshots"
    for folder, info in snapshot_markers(snap_root):
        if ENGINE_NAME_RE.match(info.name) and info.name != "best_accuracy" and not other_run(info):
            candidates.append((info.global_step, 1, "snapshot", folder))
    for info in scan_local(checkpoint_dir, sub_epochs=sub_epochs):
        if info.name != "best_accuracy" and ENGINE_NAME_RE.match(info.name):
            candidates.append((info.global_step, 0, "engine", checkpoint_dir / info.name))
    if checkpoint_s3:
        for info in list_remote(checkpoint_s3, endpoint_url=endpoint_url):
            if ENGINE_NAME_RE.match(info.name) and info.name != "best_accuracy" \
                    and not other_run(info):
                candidates.append((info.global_step, -1, "s3", info.name))
            elif other_run(info):
                log.warning("ignoring %s/%s: written by another run (%s)", checkpoint_s3,
                            info.name, info.run_id)
    if not candidates:
        return None
    candidates.sort(key=lambda c: (c[0], c[1]), reverse=True)
    for step, _, kind, ref in candidates:
        try:
            if kind == "snapshot":
                verify_snapshot(ref)
                return engine_prefix(ref)
            if kind == "engine":
                return Path(ref)
            log.info("downloading checkpoint %s (step %s) from %s", ref, step, checkpoint_s3)
            folder = download_snapshot(checkpoint_s3 or "", ref, snap_root, endpoint_url=endpoint_url)
            return engine_prefix(folder)
        except (IntegrityError, UserError) as exc:
            log.warning("skipping checkpoint %s: %s", ref, exc)
    return None


def prepare_resume(prefix: Path, dest_dir: Path) -> Path:
    """A copy of the checkpoint whose ``.states`` also carries ``global_step`` inside
    ``best_model_dict``.

    PaddleOCR 2.10's ``load_model`` returns ``states["best_model_dict"]`` (plus start_epoch)
    and ``program.train`` reads ``global_step`` only from that dict, while ``save_model``
    stores it beside it: without this the step count restarts at 0 after a resume (the epoch
    and the learning rate do continue). The engine is not modified; only the copy it loads.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    states = read_states(prefix.with_name(prefix.name + ".states"))
    best = dict(states.get("best_model_dict") or {})
    best["global_step"] = int(states.get("global_step", 0))
    states["best_model_dict"] = best
    target = dest_dir / prefix.name
    for suffix in SUFFIXES[:-1]:
        src = prefix.with_name(prefix.name + suffix)
        dst = target.with_name(target.name + suffix)
        if dst.exists() or dst.is_symlink():
            dst.unlink()
        try:
            os.link(src, dst)  # the engine only reads them
        except OSError:
            shutil.copy2(src, dst)
    with open(target.with_name(target.name + ".states"), "wb") as fh:
        pickle.dump(states, fh, protocol=2)
    return target


def resume_point(checkpoint_dir: Path, checkpoint_s3: Optional[str], *, dest_dir: Path,
                 endpoint_url: Optional[str], sub_epochs: int,
                 run_id: str) -> Tuple[Optional[Path], Optional[CheckpointInfo]]:
    """The prefix the engine resumes from (a copy prepared in ``dest_dir``, see
    :func:`prepare_resume`) and the chosen checkpoint's step and epoch; ``(None, None)`` when
    there is none."""
    found = find_resume_checkpoint(checkpoint_dir, checkpoint_s3, endpoint_url=endpoint_url,
                                   sub_epochs=sub_epochs, run_id=run_id)
    if found is None:
        return None, None
    info = info_from_states(found.parent, found.name, sub_epochs)
    return prepare_resume(found, dest_dir), info


def warn_if_prefix_is_used(checkpoint_s3: str, endpoint_url: Optional[str]) -> None:
    """A new run (no --resume) over a prefix that holds another run's checkpoints: say so."""
    old = list_remote(checkpoint_s3, endpoint_url=endpoint_url)
    if old:
        log.warning("%s already holds checkpoints (%s, step %d) of an earlier run; this new "
                    "run replaces latest/best_accuracy there. Use --resume to continue that "
                    "run, or another --checkpoint-s3 prefix.", checkpoint_s3, old[0].name,
                    old[0].global_step)


def restore_run_files(run: Path, checkpoint_dir: Path, checkpoint_s3: Optional[str],
                      endpoint_url: Optional[str]) -> None:
    """Before a resume: bring back the run's history that this machine lacks, first from the
    mirror in ``checkpoint_dir/run/``, then (with ``checkpoint_s3``) from S3, with
    ``best_of_run/``, so the history and the run's best continue."""
    for name in MIRRORED:
        src = checkpoint_dir / "run" / name
        if src.is_file() and not (run / name).exists():
            shutil.copyfile(src, run / name)
    if checkpoint_s3:
        _restore_from_s3(run, checkpoint_dir, checkpoint_s3, endpoint_url)


def _restore_from_s3(run_dir: Path, checkpoint_dir: Path, checkpoint_s3: str,
                     endpoint_url: Optional[str]) -> None:
    base = S3Uri.parse(checkpoint_s3)
    for fname in MIRRORED:
        if not (run_dir / fname).exists():
            try:
                download_file(str(base.join(fname)), run_dir / fname, endpoint_url=endpoint_url)
            except Exception as exc:  # noqa: BLE001 - absent on a first attempt
                log.debug("no %s in %s: %s", fname, base, exc)
    if not (checkpoint_dir / "best_of_run" / MARKER).exists() and read_remote_marker(
            str(base.join("best_of_run", MARKER)), endpoint_url=endpoint_url):
        download_snapshot(checkpoint_s3, "best_of_run", checkpoint_dir, endpoint_url=endpoint_url)


def mirror_run_files(run: Path, checkpoint_dir: Path, node_rank: int = 0) -> None:
    """When the checkpoints live outside the run folder (SageMaker: /opt/ml/checkpoints, which
    SageMaker syncs and restores), keep a copy of the run's history beside them. Only the
    first host does: on several hosts every /opt/ml/checkpoints syncs to the same S3 prefix."""
    if node_rank != 0 or run in checkpoint_dir.parents:
        return
    dest = checkpoint_dir / "run"
    dest.mkdir(parents=True, exist_ok=True)
    for name in MIRRORED:
        if (run / name).is_file():
            tmp = dest / f".{name}.part"
            shutil.copyfile(run / name, tmp)
            os.replace(tmp, dest / name)
