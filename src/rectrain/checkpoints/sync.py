"""Snapshot every checkpoint the engine saves and upload it in the background.

The runner calls :meth:`CheckpointSync.on_save` when the engine logs ``save model in X`` (the
engine logs it after the last file is written). The checkpoint is copied at once to
``<checkpoint_dir>/snapshots/<name>/`` with its marker (the engine overwrites ``latest`` and
``best_accuracy`` in place later), then a worker thread uploads it, marker last.
``best_of_run/`` keeps the best ``best_accuracy`` of the whole run across resumes.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from rectrain.checkpoints.local import MARKER, CheckpointInfo, snapshot
from rectrain.checkpoints.remote import upload_snapshot
from rectrain.checkpoints.run_state import STATE_FILE
from rectrain.fsutil import sha256_file, write_json_atomic
from rectrain.logs import get_logger
from rectrain.storage.s3 import S3Uri, make_client
from rectrain.storage.transfer import upload_file

log = get_logger("checkpoints")

RUN_FILES = ("metrics.jsonl", "problem-log.md", STATE_FILE, "config.yml", "train.log", "curves.png")


class CheckpointSync:
    def __init__(self, checkpoint_dir: Path, run_dir: Path, *, s3_prefix: Optional[str] = None,
                 endpoint_url: Optional[str] = None, sub_epochs: int = 1,
                 main_indicator: str = "acc",
                 best_so_far: Optional[float] = None, run_id: str = "",
                 on_best: Optional[Callable[[CheckpointInfo], None]] = None) -> None:
        self.checkpoint_dir = Path(checkpoint_dir)
        self.run_dir = Path(run_dir)
        self.snap_root = self.checkpoint_dir / "snapshots"
        self.s3_prefix = s3_prefix.rstrip("/") if s3_prefix else None
        self.endpoint_url = endpoint_url
        self.sub_epochs = sub_epochs
        self.main_indicator = main_indicator
        self.best_so_far = best_so_far
        self.run_id = run_id
        self.on_best = on_best
        self.uploaded_keys: List[str] = []
        self.errors: List[str] = []
        self.checkpoint_errors: List[str] = []  # uploads of checkpoints (not run files)
        self._queue: queue.Queue[Optional[str]] = queue.Queue()
        self._pending: set = set()
        self._locks: Dict[str, threading.Lock] = {}
        self._client: Any = None
        self._thread: Optional[threading.Thread] = None
        self._wanted: Dict[str, str] = {}  # name -> sha256 of the newest snapshot's marker
        self._done: Dict[str, str] = {}  # name -> sha256 of the marker uploaded last
        self._closing = False
        if self.s3_prefix:
            self._client = make_client(endpoint_url)
            self._thread = threading.Thread(target=self._worker, name="ckpt-upload", daemon=True)
            self._thread.start()

    def _lock(self, name: str) -> threading.Lock:
        return self._locks.setdefault(name, threading.Lock())

    # called on the output thread --------------------------------------------------------
    def on_save(self, name: str) -> Optional[CheckpointInfo]:
        """Snapshot checkpoint ``name`` now; queue its upload."""
        try:
            with self._lock(name):
                info = snapshot(self.checkpoint_dir, name, self.snap_root, sub_epochs=self.sub_epochs,
                                run_id=self.run_id)
        except Exception as exc:  # noqa: BLE001 - never kill the run over a snapshot
            self.errors.append(f"snapshot {name}: {exc}")
            log.warning("could not snapshot checkpoint %s: %s", name, exc)
            return None
        self._want(name, self.snap_root / name)
        if name == "best_accuracy":
            # after a resume the engine's first eval overwrites best_accuracy even when worse:
            # S3 keeps the better one, best_of_run/ the best of the whole run
            if self._maybe_best_of_run(info):
                self.enqueue(name)
        else:
            self.enqueue(name)
        return info

    def _maybe_best_of_run(self, info: CheckpointInfo) -> bool:
        value = info.metric.get(self.main_indicator)
        if not isinstance(value, (int, float)):
            return True
        if self.best_so_far is not None and value < self.best_so_far:
            log.info("best_accuracy after resume (%s %.4f) is below the run's best %.4f: "
                     "best_of_run kept", self.main_indicator, value, self.best_so_far)
            return False
        src = self.snap_root / "best_accuracy"
        dest = self.checkpoint_dir / "best_of_run"
        with self._lock("best_of_run"):
            # files renamed best_of_run.* so the folder reads like any checkpoint kept in its
            # own folder (<dir>/best_of_run/best_of_run.pdparams)
            tmp = dest.with_name(".best_of_run.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            marker = json.loads((src / MARKER).read_text(encoding="utf-8"))
            files = {}
            for fname, meta in marker["files"].items():
                new = "best_of_run" + fname[len("best_accuracy"):]
                shutil.copy2(src / fname, tmp / new)
                files[new] = meta
            marker.update(name="best_of_run", location=str(dest), files=files,
                          engine_prefix="best_of_run")
            write_json_atomic(tmp / MARKER, marker)
            old = dest.with_name(".best_of_run.old")
            shutil.rmtree(old, ignore_errors=True)
            if dest.exists():
                dest.rename(old)
            tmp.rename(dest)
            shutil.rmtree(old, ignore_errors=True)
        self._want("best_of_run", dest)
        self.best_so_far = float(value)
        if self.on_best:
            self.on_best(info)
        self.enqueue("best_of_run")
        return True

    def _want(self, name: str, folder: Path) -> None:
        if self.s3_prefix:
            try:
                self._wanted[name] = sha256_file(folder / MARKER)
            except OSError:
                pass

    def missing(self) -> List[str]:
        """The checkpoints whose newest snapshot is not in S3 (``s3://.../<name>/``)."""
        return [f"{self.s3_prefix}/{name}/" for name, sha in sorted(self._wanted.items())
                if self._done.get(name) != sha]

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
        folder = self.checkpoint_dir / "best_of_run" if name == "best_of_run" else self.snap_root / name
        # hard-link the snapshot's files under the lock (instant), upload without it: a new
        # snapshot of the same name (new files, new inodes) never waits for the network
        staging = self.snap_root / f".upload-{name}"
        with self._lock(name):
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            for path in folder.iterdir():
                try:
                    os.link(path, staging / path.name)
                except OSError:
                    shutil.copy2(path, staging / path.name)
        try:
            marker_sha = sha256_file(staging / MARKER)
            keys = upload_snapshot(staging, self.s3_prefix or "", client=self._client, name=name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._done[name] = marker_sha
        self.uploaded_keys.extend(keys)
        log.debug("uploaded checkpoint %s to %s/%s", name, self.s3_prefix, name)
        if self._queue.qsize() == 0:  # the run files once the backlog is uploaded
            self.upload_run_files()

    def upload_run_files(self, with_log: bool = False) -> None:
        """metrics.jsonl, problem-log.md, run-state.json, ... beside the checkpoints
        (train.log, which can be large, only when asked: at the end of an attempt)."""
        if not self.s3_prefix:
            return
        base = S3Uri.parse(self.s3_prefix)
        for fname in RUN_FILES:
            if fname == "train.log" and not with_log:
                continue
            path = self.run_dir / fname
            if path.is_file():
                try:
                    upload_file(path, str(base.join(fname)), client=self._client)
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

    def close(self, timeout: float = 120.0, retry: bool = True) -> bool:
        """Upload what is queued (and, with ``retry``, once more what failed), then stop.
        True when everything queued was attempted in time; :meth:`missing` says what is not
        in S3."""
        deadline = time.monotonic() + timeout
        self._closing = True
        done = self.flush(timeout)
        if retry and done and self.missing():
            for name in list(self._wanted):
                if self._done.get(name) != self._wanted[name]:
                    self.enqueue(name)
            done = self.flush(max(1.0, deadline - time.monotonic()))
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=1.0)
        return done
