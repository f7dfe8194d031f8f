"""Resuming a run: which checkpoint to continue from, the copy the engine loads, and the run's
history (run-state.json, metrics.jsonl, problem-log.md) brought back onto a fresh machine.

Where the history lives between attempts:
- in S3 beside the checkpoints (``--checkpoint-s3``; uploaded by :class:`CheckpointSync`);
- in ``<checkpoint_dir>/run/`` when the checkpoints live outside the run folder (SageMaker's
  /opt/ml/checkpoints, which SageMaker itself syncs and restores): :func:`mirror_run_files`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Tuple

from rectrain.checkpoints import pickles
from rectrain.checkpoints.local import (
    ENGINE_NAME_RE,
    MARKER,
    NAME_RE,
    POINTER_SUFFIX,
    CheckpointInfo,
    engine_files_problem,
    engine_prefix,
    folder_name_of,
    info_from_states,
    pointer_path,
    read_marker,
    read_pointer,
    read_states,
    snapshot,
    verify_snapshot,
)
from rectrain.checkpoints.remote import (
    download_snapshot,
    is_not_found,
    read_remote_pointer,
    scan_remote,
)
from rectrain.checkpoints.run_state import STATE_FILE
from rectrain.errors import IntegrityError, StorageError, UserError
from rectrain.logs import get_logger
from rectrain.outputs import copy_file
from rectrain.storage.objects import download_file
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import S3Service
from rectrain.training.request import ADOPT_NEWEST

log = get_logger("training")

MIRRORED = ("metrics.jsonl", STATE_FILE, "problem-log.md")


@dataclass
class Found:
    """A checkpoint found while looking for a resume point; ``problem`` says why it cannot be
    used ("" while it still can)."""

    where: str  # a local folder or an s3:// address
    kind: str  # snapshot | engine | s3
    name: str
    info: Optional[CheckpointInfo] = None
    problem: str = ""
    ref: Any = None  # the snapshot folder (snapshot), the prefix (engine), the name (s3)

    @property
    def step(self) -> int:
        return self.info.global_step if self.info is not None else -1

    def line(self) -> str:
        step = f"step {self.step}" if self.info is not None else "step ?"
        run = f", run {self.info.run_id}" if self.info is not None and self.info.run_id else ""
        return f"  {self.where} ({step}{run}): {self.problem or 'usable'}"


class NoUsableCheckpoint(UserError):
    """Checkpoints were found but none can be resumed from (exit 2, before training)."""


def scan_checkpoints(checkpoint_dir: Path, checkpoint_s3: Optional[S3Uri] = None, *,
                     s3: Optional[S3Service] = None, sub_epochs: int = 1) -> List[Found]:
    """Everything that looks like a checkpoint, locally (snapshot folders, the engine's own
    files) and under ``checkpoint_s3``, with the problems visible without downloading.
    Errors listing or reading S3 other than "not found" are raised, never taken as "none"."""
    found: List[Found] = []
    snap_root = checkpoint_dir / "snapshots"
    if snap_root.is_dir():
        for folder in sorted(snap_root.iterdir()):
            parsed = folder_name_of(folder)
            if parsed is None and NAME_RE.match(folder.name) and (folder / MARKER).is_file():
                parsed = (0, folder.name)  # rectrain before issue 13: snapshots/<name>/, verified too
            if parsed is None or not folder.is_dir():
                continue
            marker = folder / MARKER
            item = Found(str(folder), "snapshot", parsed[1], ref=folder)
            if not marker.exists():
                item.problem = f"no {MARKER} (the copy was interrupted)"
            else:
                item.info = read_marker(marker)
                if item.info is None:
                    item.problem = f"{MARKER} is damaged"
            found.append(item)
    for states in sorted(checkpoint_dir.glob("*.states")):
        name = states.name[: -len(".states")]
        if not ENGINE_NAME_RE.match(name):
            continue
        item = Found(str(checkpoint_dir / name), "engine", name, ref=checkpoint_dir / name)
        try:
            item.info = info_from_states(checkpoint_dir, name, sub_epochs)
            item.problem = engine_files_problem(checkpoint_dir, name)
        except (IntegrityError, OSError) as exc:
            item.problem = f"unreadable ({exc})"
        found.append(item)
    if checkpoint_s3 is not None:
        assert s3 is not None
        for remote in scan_remote(s3, checkpoint_s3):
            parsed = folder_name_of(remote.name)
            found.append(Found(remote.uri, "s3", parsed[1] if parsed else remote.name, remote.info,
                               remote.problem, ref=remote.name))
    return found


def adopt_run(found: List[Found], run_id: str = ADOPT_NEWEST) -> Optional[CheckpointInfo]:
    """The marker (its ``run_id`` and ``sub_epochs``) of run ``run_id``'s newest checkpoint, by
    step (``ADOPT_NEWEST``: of any run): the run a resume continues when run-state.json is lost
    and the user named it. ``None`` when no complete checkpoint of it was found."""
    infos = [f.info for f in found if f.info is not None and f.info.run_id and not f.problem
             and run_id in (ADOPT_NEWEST, f.info.run_id)]
    return max(infos, key=lambda i: (i.global_step, i.time)) if infos else None


def run_ids(found: List[Found]) -> List[str]:
    """The run ids named by the complete checkpoints found, newest step first."""
    infos = sorted((f.info for f in found if f.info is not None and f.info.run_id and not f.problem),
                   key=lambda i: i.global_step, reverse=True)
    return list(dict.fromkeys(i.run_id for i in infos))


# Why the engine's own files are not resumed from in a folder an outside sync restored.
RESTORED_ENGINE_FILES = ("restored by an outside sync (SageMaker's agent uploads each file as it "
                         "changes and restores them in any order with new times: these may be "
                         "files of different saves); only snapshots with a verified marker are "
                         "resumed from here")


def _was_complete(item: Found, engine_trusted: bool = True) -> bool:
    """A checkpoint that was complete once: a rectrain marker exists (maybe damaged), or the
    engine's own files are there on this machine's disk (the engine logged a save; never start
    over over them). Restored engine files prove no save was ever whole in S3."""
    if item.kind == "engine":
        return engine_trusted
    return item.info is not None or "damaged" in item.problem


def _is_resume_point(item: Found) -> bool:
    return bool(ENGINE_NAME_RE.match(item.name)) and item.name != "best_accuracy"


def choose_resume(found: List[Found], *, run_id: str, snap_root: Path,
                  checkpoint_s3: Optional[S3Uri], s3: Optional[S3Service],
                  sub_epochs: int = 1, engine_trusted: bool = True) -> Optional[Path]:
    """The ``Global.checkpoints`` prefix of the newest usable checkpoint of run ``run_id``
    (S3 ones are downloaded and verified first; local snapshots are checked against their
    marker). ``None`` when nothing was found at all; :class:`NoUsableCheckpoint` (exit 2)
    with the list of what was found and why each was rejected when none is usable.
    ``best_accuracy`` / ``best_of_run`` are never resume points (saved mid-epoch). The engine's
    own files are a checkpoint too: when they are the newest, they are snapshotted (marker and
    checksums) and resumed from; when they are there but unusable, this refuses. In a folder
    an outside sync restored (``engine_trusted=False``) they are never resumed from and never
    block a start: SageMaker's agent uploads each file whenever it changes and stops at any
    moment, so S3 can hold the ``.pdparams`` of one save beside the ``.states`` of another,
    all whole pickles, and the restore gives them new times in any order. Nothing in the
    files tells such a mix from one save (the weights carry no step), and no bytes of them
    were ever sealed: the snapshots (marker written once the sync had copied the files) are
    the resume points there."""
    relevant = [f for f in found if _is_resume_point(f) or f.info is None]
    if not engine_trusted:
        for item in relevant:
            if item.kind == "engine":
                item.problem = RESTORED_ENGINE_FILES
    for item in relevant:
        if not item.problem and item.info is not None and run_id and item.info.run_id \
                and item.info.run_id != run_id:
            item.problem = f"written by another run ({item.info.run_id}; this run is {run_id})"
    usable = [f for f in relevant if not f.problem and f.info is not None]
    # the highest step; at a tie a local copy, then `latest`, then the newest written
    rank = {"snapshot": 2, "engine": 1, "s3": 0}  # at a tie, what needs no download
    usable.sort(key=lambda f: (f.step, rank[f.kind], f.name == "latest",
                               f.info.time if f.info else 0.0), reverse=True)
    for item in usable:
        try:
            if item.kind == "snapshot":
                verify_snapshot(item.ref)
                return engine_prefix(item.ref)
            if item.kind == "engine":
                log.warning("resuming from the engine's own files %s (step %s): no newer "
                            "snapshot of rectrain's; snapshotted and verified now", item.where,
                            item.step)
                copied = snapshot(Path(item.ref).parent, item.name, snap_root, sub_epochs=sub_epochs,
                                  run_id=run_id)
                verify_snapshot(Path(copied.location))
                return engine_prefix(Path(copied.location))
            log.info("downloading checkpoint %s (step %s)", item.where, item.step)
            assert s3 is not None and checkpoint_s3 is not None
            folder = download_snapshot(s3, checkpoint_s3, item.ref, snap_root)
            return engine_prefix(folder)
        except IntegrityError as exc:
            item.problem = exc.message
        except StorageError as exc:
            if not is_not_found(exc):
                raise  # AccessDenied, timeouts: never "not usable", never a restart
            item.problem = f"a file its marker lists is missing ({exc.message})"
        log.warning("cannot resume from %s: %s", item.where, item.problem)
    if not relevant:
        return None
    listing = "\n".join(f.line() for f in sorted(relevant, key=lambda f: f.step, reverse=True))
    if not any(_was_complete(f, engine_trusted) for f in relevant):
        # only copies that never completed (no marker was ever written: a snapshot or upload
        # cut short before the first checkpoint was complete; restored engine files, which
        # nothing sealed): nothing complete ever existed, so starting over loses nothing
        log.warning("no complete checkpoint, only incomplete copies; starting from the "
                    "beginning:\n%s", listing)
        return None
    raise NoUsableCheckpoint(
        f"--resume found {len(relevant)} checkpoint(s) but none can be resumed from:\n{listing}\n",
        "repair or restore a checkpoint (`rectrain ckpt list`, `rectrain ckpt push`), or start "
        "over on purpose with --restart (a new run; these checkpoints are then ignored).")


def find_resume_checkpoint(checkpoint_dir: Path, checkpoint_s3: Optional[S3Uri] = None, *,
                           s3: Optional[S3Service] = None, sub_epochs: int = 1,
                           run_id: str = "", engine_trusted: bool = True) -> Optional[Path]:
    """The newest complete epoch-end checkpoint (``latest`` / ``iter_epoch_N``) of run
    ``run_id``, local or in S3, as a ``Global.checkpoints`` prefix; see :func:`choose_resume`."""
    found = scan_checkpoints(checkpoint_dir, checkpoint_s3, s3=s3, sub_epochs=sub_epochs)
    return choose_resume(found, run_id=run_id, snap_root=checkpoint_dir / "snapshots",
                         checkpoint_s3=checkpoint_s3, s3=s3, sub_epochs=sub_epochs,
                         engine_trusted=engine_trusted)


def prepare_resume(prefix: Path, dest_dir: Path) -> Path:
    """A copy of the checkpoint for the engine: every file re-pickled from the plain data
    rectrain's safe unpickler read (the engine loads them with plain pickle; a file from S3 or
    another machine never reaches it as is, see :func:`pickles.engine_copy`), and a ``.states``
    that also carries ``global_step`` inside ``best_model_dict``.

    PaddleOCR 2.10's ``load_model`` returns ``states["best_model_dict"]`` (plus start_epoch)
    and ``program.train`` reads ``global_step`` only from that dict, while ``save_model``
    stores it beside it: without this the step count restarts at 0 after a resume (the epoch
    and the learning rate do continue). The engine is not modified; only the copy it loads.
    """
    states = read_states(prefix.with_name(prefix.name + ".states"))
    best = dict(states.get("best_model_dict") or {})
    best["global_step"] = int(states.get("global_step", 0))
    states["best_model_dict"] = best
    return pickles.engine_copy(prefix, dest_dir, states=states)


def resume_point(checkpoint_dir: Path, checkpoint_s3: Optional[S3Uri], *, dest_dir: Path,
                 s3: Optional[S3Service], sub_epochs: int, run_id: str,
                 found: Optional[List[Found]] = None, engine_trusted: bool = True,
                 ) -> Tuple[Optional[Path], Optional[CheckpointInfo]]:
    """The prefix the engine resumes from (a copy prepared in ``dest_dir``, see
    :func:`prepare_resume`) and the chosen checkpoint's step and epoch; ``(None, None)`` when
    nothing was found; :class:`NoUsableCheckpoint` when nothing found is usable."""
    if found is None:
        found = scan_checkpoints(checkpoint_dir, checkpoint_s3, s3=s3, sub_epochs=sub_epochs)
    chosen = choose_resume(found, run_id=run_id, snap_root=checkpoint_dir / "snapshots",
                           checkpoint_s3=checkpoint_s3, s3=s3, sub_epochs=sub_epochs,
                           engine_trusted=engine_trusted)
    if chosen is None:
        return None, None
    info = info_from_states(chosen.parent, chosen.name, sub_epochs)
    return prepare_resume(chosen, dest_dir), info


def refuse_to_overwrite(found: List[Found]) -> None:
    """A new run (neither --resume nor --restart) where checkpoints already are: stop, since
    its first upload would replace ``latest`` there."""
    items = [f for f in found if f.kind != "engine" or f.info is not None]
    if not items:
        return
    newest = max(items, key=lambda f: f.step)
    raise UserError(
        f"checkpoints of an earlier run are already there ({len(items)}, e.g. {newest.where} at "
        f"step {newest.step}).",
        "add --resume to continue that run, --restart to start over on purpose (a new run that "
        "replaces them), or use another --checkpoint-s3 prefix / --run-dir.")


def restore_run_files(run: Path, checkpoint_dir: Path, checkpoint_s3: Optional[S3Uri],
                      s3: Optional[S3Service]) -> None:
    """Before a resume: bring back the run's history that this machine lacks, first from the
    mirror in ``checkpoint_dir/run/``, then (with ``checkpoint_s3``) from S3, with
    ``best_of_run`` (pointer and folder), so the history and the run's best continue."""
    for name in MIRRORED:
        src = checkpoint_dir / "run" / name
        if src.is_file() and not (run / name).exists():
            copy_file(src, run / name)
    if checkpoint_s3 is not None:
        assert s3 is not None
        _restore_from_s3(run, checkpoint_dir, checkpoint_s3, s3)


def _restore_from_s3(run_dir: Path, checkpoint_dir: Path, base: S3Uri, s3: S3Service) -> None:
    for fname in MIRRORED:
        if not (run_dir / fname).exists():
            try:
                download_file(s3, base.join(fname), run_dir / fname)
            except StorageError as exc:
                if not is_not_found(exc):  # AccessDenied, timeouts: say so, never start over
                    raise
                log.debug("no %s in %s (a first attempt)", fname, base)
    snap_root = checkpoint_dir / "snapshots"
    if read_pointer(snap_root, "best_of_run") is not None:
        return
    try:
        got = read_remote_pointer(s3, base, "best_of_run")
        if got is not None:
            download_snapshot(s3, base, got[0], snap_root)
            download_file(s3, base.join("best_of_run" + POINTER_SUFFIX),
                          pointer_path(snap_root, "best_of_run"))
    except IntegrityError as exc:  # damaged: the run goes on; run-state.json keeps the best value
        log.warning("the run's best model in S3 cannot be restored: %s A better one replaces it; "
                    "the metric to beat stays the one in run-state.json.", exc)


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
            copy_file(run / name, dest / name)
