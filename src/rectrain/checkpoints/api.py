"""Checkpoint operations shared by the CLI, the notebook and the SageMaker entry point.

These are entry points of the Python API: a source or destination is a local folder or an
``s3://`` address as text (parsed here, once), and S3 is reached through the given
:class:`S3Service` or one built from ``endpoint_url``."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Union

from rectrain.checkpoints.local import (
    ENGINE_NAME_RE,
    MARKER,
    PROTECTED,
    CheckpointInfo,
    engine_files_problem,
    engine_prefix,
    pointer_path,
    pointers,
    refuse_unusable_pointers,
    remove_snapshot,
    scan_local,
    sizes_match,
    snapshot,
)
from rectrain.checkpoints.owner import PrefixLease
from rectrain.checkpoints.remote import (
    delete_remote,
    download_named,
    list_remote,
    read_remote_pointer,
    upload_pointer,
    upload_snapshot,
)
from rectrain.checkpoints.run_state import STATE_FILE, RunState
from rectrain.errors import StorageError, UserError
from rectrain.logs import get_logger
from rectrain.outputs import remove_file
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import S3Service

SNAPSHOTS = "snapshots"
log = get_logger(__name__)


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


def _run_id(checkpoint_dir: Path, *known: str) -> str:
    """The run these checkpoints belong to: run-state.json's id, else the first of ``known``."""
    for candidate in (checkpoint_dir / STATE_FILE, checkpoint_dir.parent / STATE_FILE):
        state = RunState.load(candidate)
        if state is not None and state.run_id:
            return state.run_id
    for run_id in known:
        if run_id:
            return run_id
    raise UserError(f"{checkpoint_dir}: no run-state.json says which run these checkpoints belong "
                    "to, and a checkpoint without a run id would be taken for any run's.",
                    "pass the run's id with --run-id ID (`rectrain ckpt list` of the run's prefix "
                    "shows it), or push from the run folder that holds run-state.json.")


def list_checkpoints(source: Union[str, Path], *, endpoint_url: Optional[str] = None,
                     s3: Optional[S3Service] = None) -> List[CheckpointInfo]:
    """Complete checkpoints of a run dir, a checkpoint dir or an s3:// prefix, newest first.
    Local: the named snapshots (``snapshots/<name>.json``, verified copies) and the engine's own
    files not snapshotted yet."""
    if _is_s3(source):
        return list_remote(s3 or S3Service(endpoint_url), S3Uri.parse(str(source)))
    base = _checkpoint_dir(source)
    if not base.is_dir():
        raise UserError(f"{base}: no such folder.", "give a run folder, a checkpoint folder or s3://...")
    found = {}
    for name, folder, info in pointers(base / SNAPSHOTS):
        if sizes_match(folder, info):
            found[name] = info
        else:  # changed since it was sealed: not complete any more
            log.warning("%s: a file differs from its marker (%s); not listed as complete. Fix: use "
                        "another checkpoint, or pull it again from S3 (`rectrain ckpt pull`).",
                        folder, MARKER)
    for info in scan_local(base, sub_epochs=_sub_epochs(base)):
        have = found.get(info.name)
        if have is None or have.global_step < info.global_step:
            found[info.name] = info
    return sorted(found.values(), key=lambda i: (i.global_step, i.time), reverse=True)


def sync_recognition_checkpoints_to_s3(checkpoint_dir: Union[str, Path], s3_uri: Union[str, S3Uri], *,
                                       endpoint_url: Optional[str] = None,
                                       s3: Optional[S3Service] = None, run_id: str = "") -> List[str]:
    """Upload every named checkpoint of ``checkpoint_dir`` (``latest``, ``best_accuracy``,
    ``best_of_run``, ``iter_epoch_N``) that S3 does not already hold: its folder (marker
    last), then its pointer. The engine's files newer than their snapshot (or never
    snapshotted) are snapshotted first, with the run's id (its run-state.json, or ``run_id``:
    required, a marker without one could be taken for any run's). Fail-closed: afterwards each
    pointer in S3 is read back and must name the folder pushed, else :class:`StorageError`.
    Returns the keys written."""
    s3 = s3 or S3Service(endpoint_url)
    prefix = S3Uri.parse(s3_uri)
    base = _checkpoint_dir(checkpoint_dir)
    snaps = base / SNAPSHOTS
    refuse_unusable_pointers(snaps)
    PrefixLease(s3, prefix).check_free("`ckpt push`")  # a training owns it: never beside it
    _snapshot_engine_files(base, snaps, run_id)
    local = {name: (folder, info) for name, folder, info in pointers(snaps)}
    remote = {name: read_remote_pointer(s3, prefix, name) for name in local}
    newer = [(local[n][1], r[1]) for n, r in remote.items()
             if r is not None and r[1].global_step > local[n][1].global_step]
    if newer:  # checked before anything is uploaded
        mine, theirs = newer[0]
        raise UserError(
            f"{prefix} holds a newer {mine.name} (step {theirs.global_step}) than {base} (step "
            f"{mine.global_step}): pushing would replace it"
            + (f" (and {len(newer) - 1} more)" if len(newer) > 1 else "") + ".",
            "push to another prefix (each run its own --checkpoint-s3), or pull the newer one "
            "first: `rectrain ckpt pull`.")
    keys: List[str] = []
    for name, (folder, _info) in local.items():
        there = remote[name]
        if there is not None and there[0] == folder.name:
            continue
        keys += upload_snapshot(s3, folder, prefix)
        keys.append(upload_pointer(s3, snaps, name, prefix))
    _check_pushed(s3, prefix, {name: folder.name for name, (folder, _) in local.items()})
    return keys


def _snapshot_engine_files(base: Path, snaps: Path, run_id: str) -> None:
    """Snapshot the engine's checkpoints that are newer than their snapshot (or have none):
    the newest save of a run whose snapshots failed (a full disk, a read-only folder). A save
    the engine did not finish is left out, saying so."""
    k = _sub_epochs(base)
    named = {name: info for name, _folder, info in pointers(snaps)}
    found = scan_local(base, sub_epochs=k)
    for info in found:
        have = named.get(info.name)
        if have is None or info.global_step > have.global_step:
            snapshot(base, info.name, snaps, sub_epochs=k,
                     run_id=_run_id(base, have.run_id if have else "", run_id))
    complete = {info.name for info in found}
    for states in sorted(base.glob("*.states")):
        name = states.name[: -len(".states")]
        if ENGINE_NAME_RE.match(name) and name not in complete:
            log.warning("%s: not pushed, the engine's save is not complete (%s); %s", base / name,
                        engine_files_problem(base, name) or "unreadable",
                        f"the snapshot of step {named[name].global_step} is pushed instead"
                        if name in named else "no complete copy of it exists")


def _check_pushed(s3: S3Service, prefix: S3Uri, wanted: Dict[str, str]) -> None:
    """Each pointer read back from S3 names the folder pushed (a push that reports success has
    made S3 hold the newest complete local checkpoints)."""
    wrong = []
    for name, folder in sorted(wanted.items()):
        got = read_remote_pointer(s3, prefix, name)
        if got is None or got[0] != folder:
            wrong.append(f"{name}: {prefix.join(name + '.json')} names "
                         f"{got[0] if got else 'nothing'}, not {folder}")
    if wrong:
        raise StorageError(f"after the push, S3 does not hold the local checkpoints: {'; '.join(wrong)}.",
                           f"check that nothing else writes to {prefix} (`rectrain ckpt list "
                           f"{prefix}`), then push again.")


def download_recognition_checkpoints_from_s3(s3_uri: Union[str, S3Uri], checkpoint_dir: Union[str, Path], *,
                                             name: Optional[str] = None,
                                             endpoint_url: Optional[str] = None,
                                             s3: Optional[S3Service] = None) -> Path:
    """Download one complete checkpoint (``name``, default: the newest epoch-end one) into
    ``checkpoint_dir/<name>/``, verified; returns its engine prefix (for Global.checkpoints /
    export), e.g. ``DIR/latest/latest``."""
    s3 = s3 or S3Service(endpoint_url)
    prefix = S3Uri.parse(s3_uri)
    if name is None:
        infos = [i for i in list_remote(s3, prefix)
                 if i.name not in ("best_accuracy", "best_of_run")]
        if not infos:
            raise UserError(f"{prefix} holds no complete checkpoint.",
                            "check the prefix with `rectrain ckpt list`.")
        name = infos[0].name
    dest = Path(checkpoint_dir)
    dest.mkdir(parents=True, exist_ok=True)
    folder = download_named(s3, prefix, name, dest)
    return engine_prefix(folder)


def prune_checkpoints(source: Union[str, Path], keep_last: int, *, endpoint_url: Optional[str] = None,
                      dry_run: bool = False, s3: Optional[S3Service] = None) -> List[str]:
    """Remove ``iter_epoch_N`` checkpoints except the newest ``keep_last``; never ``latest``,
    ``best_accuracy`` or ``best_of_run``. Returns the names removed."""
    if keep_last < 0:
        raise UserError("--keep-last must be 0 or more.", "use e.g. --keep-last 3.")
    if _is_s3(source):
        s3 = s3 or S3Service(endpoint_url)
    infos = list_checkpoints(source, s3=s3)
    periodic = sorted((i for i in infos if i.name not in PROTECTED and i.name.startswith("iter_epoch_")),
                      key=lambda i: i.global_step, reverse=True)
    doomed = [i.name for i in periodic[keep_last:]]
    if dry_run:
        return doomed
    if _is_s3(source):
        assert s3 is not None
        for name in doomed:
            delete_remote(s3, S3Uri.parse(str(source)), name)
        return doomed
    base = _checkpoint_dir(source)
    snaps = base / SNAPSHOTS
    folders = {name: folder for name, folder, _ in pointers(snaps)}
    for name in doomed:
        try:  # the pointer first: the name stops counting, then its folder
            remove_file(pointer_path(snaps, name), missing_ok=False)
        except FileNotFoundError:
            pass
        if name in folders:
            remove_snapshot(folders[name])
        for suffix in (".states", ".pdparams", ".pdopt"):  # states first: no longer "complete"
            try:
                remove_file(base / f"{name}{suffix}", missing_ok=False)
            except FileNotFoundError:
                pass
    return doomed
