"""Snapshot every checkpoint the engine saves and upload it in the background.

The runner calls :meth:`CheckpointSync.on_save` when the engine logs ``save model in X`` (the
engine logs it after the last file is written). The checkpoint is copied at once into a new,
immutable folder ``<checkpoint_dir>/snapshots/s<step>-<name>-<id>/`` (marker last) and
``snapshots/<name>.json`` points at it (see ``local``); then a worker thread uploads the
folder (marker last) and the pointer. An older folder of the same name is deleted, in S3
and locally, only after a newer one is complete in both. Without ``s3_prefix`` (SageMaker,
whose own sync copies the folder to S3) an older folder is deleted only once a newer one's
marker is ``seal_after_s`` old (the sync has surely copied it), and never the two newest.
``best_of_run`` keeps the best ``best_accuracy`` of the whole run across resumes.

With ``s3_prefix`` the sync owns every checkpoint the folder already holds, not only this
attempt's saves: a snapshot made before it started (the resume's copy of the engine's own
files, an earlier attempt's save whose upload never finished) is uploaded too, unless S3
already holds it or a newer one, so :meth:`missing` (the run's exit code) covers them.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Set, Tuple

from rectrain.checkpoints.local import (
    MARKER,
    SUFFIXES,
    CheckpointInfo,
    copy_snapshot,
    folder_name_of,
    pointer_path,
    pointers,
    read_pointer,
    remove_snapshot,
    seal,
    snapshot,
    stale_folders,
    verify_snapshot,
)
from rectrain.checkpoints.remote import (
    delete_remote_folder,
    read_remote_pointer,
    remote_folders_of,
    upload_snapshot,
)
from rectrain.checkpoints.run_state import STATE_FILE
from rectrain.errors import IntegrityError, RectrainError
from rectrain.logs import get_logger
from rectrain.outputs import copy_file, remove_file
from rectrain.storage.objects import upload_file
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import S3Service

log = get_logger("checkpoints")

RUN_FILES = ("metrics.jsonl", "problem-log.md", STATE_FILE, "config.yml", "train.log", "curves.png")

KEEP_LOCAL = 2  # at least these folders per name are kept when no S3 upload says which is safe
# Without --checkpoint-s3 an outside sync (SageMaker's) may copy the folder in any order and
# stop at any moment: a marker is written only once the folder's files are this old, so the
# sync has copied them before it can copy the marker (``seal_after_s``, RECTRAIN_SEAL_AFTER_S).
SEAL_AFTER_S = 60.0


class CheckpointSync:
    def __init__(self, checkpoint_dir: Path, run_dir: Path, *, s3_prefix: Optional[S3Uri] = None,
                 s3: Optional[S3Service] = None, sub_epochs: int = 1,
                 main_indicator: str = "acc",
                 best_so_far: Optional[float] = None, run_id: str = "",
                 on_best: Optional[Callable[[CheckpointInfo], None]] = None,
                 seal_after_s: float = SEAL_AFTER_S) -> None:
        if s3_prefix is not None and s3 is None:
            raise ValueError("CheckpointSync: an s3_prefix needs the S3 service that reaches it")
        self.checkpoint_dir = Path(checkpoint_dir)
        self.run_dir = Path(run_dir)
        self.snap_root = self.checkpoint_dir / "snapshots"
        self.s3_prefix = S3Uri(s3_prefix.bucket, s3_prefix.key.rstrip("/")) if s3_prefix else None
        self.s3 = s3
        self.seal_after_s = seal_after_s
        self.sub_epochs = sub_epochs
        self.main_indicator = main_indicator
        self.best_so_far = best_so_far
        self.run_id = run_id
        self.on_best = on_best
        self.uploaded_keys: List[str] = []
        self.errors: List[str] = []
        self.checkpoint_errors: List[str] = []  # uploads of checkpoints (not run files)
        self._queue: queue.Queue[Optional[str]] = queue.Queue()
        self._pending: Set[str] = set()
        self._lock = threading.Lock()  # snapshot folders are created and deleted under it
        self._thread: Optional[threading.Thread] = None
        self._wanted: Dict[str, str] = {}  # name -> folder of the newest snapshot
        self._done: Dict[str, str] = {}  # name -> folder uploaded (with its pointer) last
        self._uploaded: Set[str] = set()  # folders complete in S3
        self._ok: Dict[str, CheckpointInfo] = {}  # folders verified against their marker
        # folder -> (info, engine name, when copied): copied, marker not written yet
        self._unsealed: Dict[Path, Tuple[CheckpointInfo, str, float]] = {}
        self._sealed_at: Dict[str, float] = {}  # folder -> when this sync wrote its marker
        self._to_rotate: Set[str] = set()  # names whose older folders may still be deleted
        self._damaged: Set[str] = set()  # folders with a marker their files do not match
        self._failed: Dict[str, str] = {}  # name -> why its newest save has no snapshot
        self._copies: Dict[str, str] = {}  # sha256 -> a key in S3 with those bytes (no re-upload)
        self._state_sent = False  # run-state.json uploaded in this attempt (before any checkpoint)
        self._deferred = not self.s3_prefix
        self._closing = False
        self._stopping = False  # a stop (SIGTERM): nothing is rotated any more
        # name -> folder: snapshots here before this sync started, not yet compared with S3
        self._inherited: Dict[str, str] = {}
        if self.s3_prefix:
            self._inherit()
            self._thread = threading.Thread(target=self._worker, name="ckpt-upload", daemon=True)
            self._thread.start()
        else:
            self._sealer = threading.Thread(target=self._seal_loop, name="ckpt-seal", daemon=True)
            self._sealer.start()

    def _inherit(self) -> None:
        """Queue this run's snapshots already here (see the module's docstring); another run's
        (before a ``--restart``) are not this run's to upload. ``best_accuracy`` is left out:
        its local pointer also moves to a worse save, which is never published."""
        for name, folder, info in pointers(self.snap_root):
            other_run = bool(self.run_id and info.run_id and info.run_id != self.run_id)
            if name != "best_accuracy" and not other_run:
                self._inherited[name] = self._wanted[name] = folder.name
                self.enqueue(name)

    def _settled_before(self, name: str, folder: Path, info: CheckpointInfo) -> bool:
        """For a snapshot inherited from before this sync: True when nothing is to upload (S3
        holds it or a newer one; or it is damaged here, said and left out: never uploaded)."""
        if self._inherited.get(name) != folder.name:
            return False
        prefix, s3 = self.s3_prefix, self.s3
        assert prefix is not None and s3 is not None
        try:
            there = read_remote_pointer(s3, prefix, name)
        except IntegrityError:  # S3's pointer is damaged: ours replaces it
            there = None
        if there is not None and (there[0] == folder.name or there[1].global_step >= info.global_step):
            if there[0] == folder.name:
                self._uploaded.add(folder.name)
            self._done[name] = folder.name
        elif self._verified(folder) is None:
            log.warning("%s does not match its marker; it is not uploaded (the next save of %s "
                        "replaces it)", folder, name)
            if self._wanted.get(name) == folder.name:  # (unless a newer save replaced it)
                self._wanted.pop(name, None)
        else:
            self._inherited.pop(name, None)
            return False
        self._inherited.pop(name, None)
        return True

    # called on the output thread --------------------------------------------------------
    def on_save(self, name: str) -> Optional[CheckpointInfo]:
        """Snapshot checkpoint ``name`` now; queue its upload. A snapshot that fails (a full
        disk, a read-only folder, a copy that keeps changing) never stops the run, but it is
        kept in :meth:`failed_snapshots` (the run's exit code) until a newer snapshot of the
        same name replaces it."""
        try:
            with self._lock:
                info = snapshot(self.checkpoint_dir, name, self.snap_root, sub_epochs=self.sub_epochs,
                                run_id=self.run_id, sealed=not self._deferred)
                if self._deferred:
                    self._unsealed[Path(info.location)] = (info, name, time.monotonic())
        except Exception as exc:  # noqa: BLE001 - never kill the run over a snapshot
            self._snapshot_failed(name, exc)
            return None
        self._failed.pop(name, None)
        if not self._deferred:
            self._drop_engine_copy(name)
        if name == "best_accuracy":
            # after a resume the engine's first eval overwrites best_accuracy even when worse:
            # S3 keeps the better one, best_of_run the best of the whole run
            try:
                better = self._maybe_best_of_run(info)
            except Exception as exc:  # noqa: BLE001 - the copy failed: reported, the run goes on
                self._snapshot_failed("best_of_run", exc)
                better = True
            if better:
                self._publish(name, info)
        else:
            self._publish(name, info)
        return info

    def _drop_engine_copy(self, name: str) -> None:
        """The engine's ``iter_epoch_N.*`` once its snapshot is complete: the engine never
        writes them again, and in a synced folder each would go up a second time."""
        if not name.startswith("iter_epoch_"):
            return  # latest / best_accuracy: the engine overwrites them itself
        for suffix in SUFFIXES:
            try:
                remove_file(self.checkpoint_dir / f"{name}{suffix}")
            except OSError as exc:  # kept: only bytes
                log.debug("could not remove %s%s: %s", name, suffix, exc)

    def _snapshot_failed(self, name: str, exc: BaseException) -> None:
        self._failed[name] = f"snapshot of {self.checkpoint_dir / name} failed: {exc}"
        self.errors.append(self._failed[name])
        log.warning("could not snapshot checkpoint %s (the run goes on; it fails at the end unless a "
                    "newer %s is saved): %s", name, name, exc)

    def failed_snapshots(self) -> List[str]:
        """The checkpoints whose newest save could not be snapshotted (never replaced since)."""
        return [self._failed[name] for name in sorted(self._failed)]

    def _publish(self, name: str, info: CheckpointInfo) -> None:
        if self.s3_prefix:
            self._wanted[name] = Path(info.location).name
            self.enqueue(name)
        elif not self._deferred:
            self._rotate_local(name)

    # without S3: markers once the outside sync has surely copied the files ---------------
    def _seal_loop(self) -> None:
        while not self._closing:
            time.sleep(min(1.0, max(0.05, self.seal_after_s / 4)))
            try:
                self.seal_due()
            except Exception as exc:  # noqa: BLE001 - retried next round; reported at close
                log.warning("could not complete a snapshot: %s", exc)

    def seal_due(self, force: bool = False, rotate: bool = True) -> List[str]:
        """Write the markers (then pointers) of the copied folders old enough (all with
        ``force``: the run ended by itself, nothing writes any more), then (``rotate``) delete
        the folders they replace; returns the folders sealed."""
        done: List[str] = []
        with self._lock:
            due = sorted(((t, f) for f, (_, _, t) in self._unsealed.items()
                          if force or time.monotonic() - t >= self.seal_after_s), key=lambda p: p[0])
            for _, folder in due:
                info, engine_name, _ = self._unsealed.pop(folder)
                if folder.is_dir():
                    seal(folder, info, engine_name, self.snap_root)
                    self._sealed_at[folder.name] = time.monotonic()
                    self._to_rotate.add((folder_name_of(folder.name) or (0, info.name))[1])
                    done.append(folder.name)
                    if engine_name == info.name:
                        self._drop_engine_copy(engine_name)
            names = sorted(self._to_rotate)
        if rotate and not self._stopping:  # until settled: a marker becomes old enough later
            for name in names:
                if self._rotate_local(name):
                    with self._lock:
                        self._to_rotate.discard(name)
        return done

    def _verified(self, folder: Path) -> Optional[CheckpointInfo]:
        """The folder's marker when every file matches it (folders never change: checked once).
        A restored folder can hold a marker beside a file cut short by a stopped sync."""
        if folder.name in self._damaged:
            return None
        if folder.name not in self._ok:
            try:
                self._ok[folder.name] = verify_snapshot(folder)
            except IntegrityError:
                if (folder / MARKER).is_file():  # sealed: its files never change (not re-hashed)
                    self._damaged.add(folder.name)
                return None
        return self._ok[folder.name]

    def _rotate_local(self, name: str) -> bool:
        """Without S3 knowledge: delete the verified folders of ``name`` older than the newest
        one the outside sync has surely copied, marker included (sealed ``seal_after_s`` ago, or
        before this sync started: restored, or an earlier attempt's), never the ``KEEP_LOCAL``
        newest. Deleting on the newest marker alone would leave S3 without a complete folder
        until the sync copies that marker; a stop then leaves nothing to resume (fast epochs).
        True once settled (the newest folder is copied: nothing more to delete until a new seal)."""
        with self._lock:
            dated: List[Tuple[Tuple[int, float], Path]] = []
            for folder in self.snap_root.iterdir():
                if (folder_name_of(folder) or (0, ""))[1] != name:
                    continue
                info = self._verified(folder)
                if info is not None:
                    dated.append(((info.global_step, info.time), folder))
            dated.sort(reverse=True)
            now = time.monotonic()
            copied = [i for i, (_, f) in enumerate(dated)
                      if now - self._sealed_at.get(f.name, now - self.seal_after_s) >= self.seal_after_s]
            if not copied:
                return False
            if len(dated) < KEEP_LOCAL:
                return True
            anchor = max(copied[0], KEEP_LOCAL - 1)
            keep = {f for _, f in dated[:anchor + 1]}
            for folder in stale_folders(self.snap_root, name, dated[anchor][1]):
                if folder not in keep:
                    remove_snapshot(folder)
                    self._ok.pop(folder.name, None)
                    self._sealed_at.pop(folder.name, None)
            return copied[0] == 0

    def _maybe_best_of_run(self, info: CheckpointInfo) -> bool:
        value = info.metric.get(self.main_indicator)
        if not isinstance(value, (int, float)):
            return True
        if self.best_so_far is not None and value < self.best_so_far:
            log.info("best_accuracy after resume (%s %.4f) is below the run's best %.4f: "
                     "best_of_run kept", self.main_indicator, value, self.best_so_far)
            return False
        with self._lock:
            if self._deferred:
                best = copy_snapshot(info.location, self.snap_root, "best_of_run",
                                     engine_name="best_accuracy", info=info, sealed=False)
                self._unsealed[Path(best.location)] = (best, "best_of_run", time.monotonic())
            else:
                best = copy_snapshot(info.location, self.snap_root, "best_of_run")
        self.best_so_far = float(value)
        if self.on_best:
            self.on_best(info)
        self._publish("best_of_run", best)
        return True

    def missing(self) -> List[str]:
        """The checkpoints whose newest snapshot is not in S3 (``s3://.../<folder>/``)."""
        if self.s3_prefix is None:
            return []
        return [f"{self.s3_prefix.join(folder)}/ ({name})" for name, folder in sorted(self._wanted.items())
                if self._done.get(name) != folder]

    def enqueue(self, name: str) -> None:
        if not self.s3_prefix or name in self._pending:
            return
        self._pending.add(name)
        self._queue.put(name)

    # worker -----------------------------------------------------------------------------
    def _worker(self) -> None:
        while True:
            name = self._queue.get()
            if name is None:
                return
            self._pending.discard(name)
            try:
                self._upload(name)
            except Exception as exc:  # noqa: BLE001 - keep training; report at the end
                self.errors.append(f"upload {name}: {exc}")
                self.checkpoint_errors.append(f"upload {name}: {exc}")
                if self._closing:  # no next save: the run reports it (exit 5)
                    log.warning("upload of checkpoint %s failed: %s", name, exc)
                else:
                    log.warning("upload of checkpoint %s failed (will retry with the next "
                                "save): %s", name, exc)
            finally:
                self._queue.task_done()

    def _upload(self, name: str) -> None:
        if name in ("_run_files", "_all_run_files"):
            self.upload_run_files(with_log=name == "_all_run_files")
            return
        prefix, s3 = self.s3_prefix, self.s3
        assert prefix is not None and s3 is not None
        with self._lock:  # the pointer as it is now (a copy: a newer save may move it)
            got = read_pointer(self.snap_root, name)
            fd, pointer_copy = tempfile.mkstemp(prefix=f"rectrain-{name}-", suffix=".json")
            os.close(fd)
            copy_file(pointer_path(self.snap_root, name), pointer_copy)
        try:
            if got is None:
                raise FileNotFoundError(f"no pointer {pointer_path(self.snap_root, name)}")
            folder = got[0]
            if self._settled_before(name, folder, got[1]):
                return
            self._state_first(prefix, s3)
            if folder.name not in self._uploaded:  # folders never change: once is enough
                self.uploaded_keys.extend(upload_snapshot(s3, folder, prefix, self._copies))
                self._uploaded.add(folder.name)
            uri = prefix.join(pointer_path(self.snap_root, name).name)
            upload_file(s3, pointer_copy, uri)
            self.uploaded_keys.append(uri.key)
        finally:
            remove_file(pointer_copy)
        self._done[name] = folder.name
        log.debug("uploaded checkpoint %s (%s) to %s", name, folder.name, prefix)
        try:
            self._retire(name, folder)
        except (OSError, RectrainError) as exc:  # uploaded: only older copies stay a while
            log.warning("checkpoint %s is in S3, but its older copies could not be deleted yet "
                        "(the next save retries): %s", name, exc)
        if self._queue.qsize() == 0:  # the run files once the backlog is uploaded
            self.upload_run_files()

    def _state_first(self, prefix: S3Uri, s3: S3Service) -> None:
        """run-state.json goes up before this attempt's first checkpoint: S3 never holds a
        run's checkpoint without the state that says whose it is (a fresh machine's --resume
        would otherwise have to adopt a run from the markers, which it never does silently)."""
        state = self.run_dir / STATE_FILE
        if self._state_sent or not state.is_file():
            return
        _upload_copy(s3, state, prefix.join(STATE_FILE))
        self.uploaded_keys.append(prefix.join(STATE_FILE).key)
        self._state_sent = True

    def _retire(self, name: str, current: Path) -> None:
        """``current`` is complete locally and in S3: delete the older folders of ``name``,
        in S3 (marker first) and then locally."""
        step = (folder_name_of(current) or (0, ""))[0]
        with self._lock:
            local_old = stale_folders(self.snap_root, name, current)
            newer = {f.name for f in self.snap_root.iterdir()} - {f.name for f in local_old}
        prefix, s3 = self.s3_prefix, self.s3
        assert prefix is not None and s3 is not None
        for remote in remote_folders_of(s3, prefix, name):
            parsed = folder_name_of(remote)
            if remote != current.name and remote not in newer and parsed and parsed[0] <= step:
                delete_remote_folder(s3, prefix, remote)
                self._uploaded.discard(remote)
        with self._lock:
            for folder in local_old:
                remove_snapshot(folder)

    def upload_run_files(self, with_log: bool = False) -> None:
        """metrics.jsonl, problem-log.md, run-state.json, ... beside the checkpoints
        (train.log, which can be large, only when asked: at the end of an attempt)."""
        base, s3 = self.s3_prefix, self.s3
        if base is None or s3 is None:
            return
        for fname in RUN_FILES:
            if fname == "train.log" and not with_log:
                continue
            path = self.run_dir / fname
            if path.is_file():
                try:
                    _upload_copy(s3, path, base.join(fname))
                    self.uploaded_keys.append(base.join(fname).key)
                except Exception as exc:  # noqa: BLE001
                    self.errors.append(f"upload {fname}: {exc}")

    def flush(self, timeout: float = 120.0) -> bool:
        """Wait for the uploads queued so far (at most ``timeout`` s); True when all done."""
        if not self.s3_prefix or self._thread is None:
            return True
        self.enqueue("_all_run_files")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.05)
        return False

    def close(self, timeout: float = 120.0, retry: bool = True, stopping: bool = False) -> bool:
        """Upload what is queued (and, with ``retry``, once more what failed), then stop.
        True when everything queued was attempted in time; :meth:`missing` says what is not
        in S3.

        Without S3 (an outside sync may copy the folder): at the run's own end, and at a stop
        where nothing copies it (outside a SageMaker job), every copied folder is sealed; at a
        stop in a SageMaker job (``stopping``: SIGTERM, its agent may still be copying, or may
        have stopped) only those old enough, and nothing is rotated: the folders already
        complete stay, whatever the agent does during the grace period."""
        deadline = time.monotonic() + timeout
        self._closing = True
        if self._deferred:
            self._stopping = stopping
        self.seal_due(force=not stopping, rotate=not stopping)
        done = self.flush(timeout)
        if retry and done and self.missing():
            for name, folder in list(self._wanted.items()):
                if self._done.get(name) != folder:
                    self.enqueue(name)
            done = self.flush(max(1.0, deadline - time.monotonic()))
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=1.0)
        return done


def _upload_copy(s3: S3Service, path: Path, uri: S3Uri) -> None:
    """Upload a run file from a copy: the run appends to it or rewrites it while it runs, and
    an upload checks that the bytes it sent are the bytes it hashed."""
    fd, copy = tempfile.mkstemp(prefix="rectrain-", suffix=f"-{path.name}")
    os.close(fd)
    try:
        copy_file(path, copy)
        upload_file(s3, copy, uri)
    finally:
        remove_file(copy)
