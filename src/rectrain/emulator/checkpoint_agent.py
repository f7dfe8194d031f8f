"""SageMaker's checkpoint sync, emulated as AWS documents it (``run-local`` and the tests).

What SageMaker does with ``CheckpointConfig`` (``/opt/ml/checkpoints`` <-> ``S3Uri``):

- before the training starts, every object under the S3 prefix is copied into the folder, in
  no particular order, each file getting a new modification time;
- while training runs, files created or changed in the folder are uploaded, continuously;
  a file deleted in the folder is deleted in S3 too;
- once the job is stopped (a spot interruption, ``StopTrainingJob``: SIGTERM), nothing more
  is uploaded.

The emulation is deliberately no kinder than that: it uploads a file as it is when it scans
it (perhaps half written), restores in random order, and uploads nothing after
:meth:`SageMakerCheckpointSync.stop`. Only a job that ends by itself gets a last scan
(``stop(final=True)``). rectrain's checkpoints must survive it: each snapshot is a new folder
whose marker is written (and so uploaded) after its files and deleted first.
"""

from __future__ import annotations

import random
import re
import threading
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from rectrain.logs import get_logger
from rectrain.outputs import remove_empty_dir, remove_file, write_bytes
from rectrain.storage.objects import list_objects
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import S3Service

log = get_logger("sagemaker")
LATEST_MARKER = re.compile(r"^snapshots/s\d+-latest-[^/]+/_COMPLETE\.json$")


class SageMakerCheckpointSync:
    """Sync ``folder`` with ``uri`` the way SageMaker does for ``/opt/ml/checkpoints``.

    ``restore()`` before the attempt, ``start()`` when it starts, ``stop()`` when it is
    stopped (nothing uploaded after), ``stop(final=True)`` when it ended by itself.
    ``every``: seconds between scans while running. ``rng``: the restore order (seeded in tests).
    """

    def __init__(self, s3: S3Service, folder: Path, uri: S3Uri, *, every: float = 0.5,
                 rng: Optional[random.Random] = None) -> None:
        self.s3 = s3
        self.folder = Path(folder)
        self.base = S3Uri(uri.bucket, uri.key.rstrip("/"))
        self.key_prefix = uri.key  # matched as SageMaker matches it: a key prefix, '/' or not
        self.uri = str(self.base)
        self.every = every
        self.rng = rng or random.Random()
        self.uploaded = 0
        self.deleted = 0
        self.restored = 0
        self._sent: Dict[str, Tuple[int, int]] = {}  # rel path -> (size, mtime_ns) in S3
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._final = False
        self._restored_sigs: Dict[str, Tuple[int, int]] = {}
        self.errors: List[str] = []

    def _remote(self) -> List[str]:
        """Every key matching the ``S3Uri`` as a key prefix: ``.../run1`` also matches
        ``.../run10/...`` (syne-tune PR #363 saw SageMaker restore those); ``.../run1/`` does not."""
        return [o.key for o in list_objects(self.s3, S3Uri(self.base.bucket, self.key_prefix), folder=False)
                if not o.key.endswith("/")]

    # before the attempt ---------------------------------------------------------------
    def restore(self) -> int:
        """Every object matching the prefix into the folder, in random order, new mtimes."""
        keys = self._remote()
        self.rng.shuffle(keys)
        root = self.folder.resolve()
        for key in keys:
            rel = key[len(self.key_prefix):].lstrip("/")
            target = (self.folder / rel).resolve()
            if not rel or ".." in Path(rel).parts or root not in target.parents:
                log.warning("not restoring s3://%s/%s: its name leads outside %s", self.base.bucket,
                            key, self.folder)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            body = self.s3.read_bytes(S3Uri(self.base.bucket, key))
            write_bytes(target, body)  # a new modification time, as on SageMaker
            st = target.stat()
            self._sent[rel] = (st.st_size, st.st_mtime_ns)
            self.restored += 1
        self._restored_sigs = dict(self._sent)
        return self.restored

    # while it runs ----------------------------------------------------------------------
    def start(self) -> None:
        self._stopped.clear()
        self._thread = threading.Thread(target=self._run, name="sagemaker-ckpt-sync", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self.every):
            try:
                self.scan()
            except Exception as exc:  # noqa: BLE001 - SageMaker retries; so do we
                self.errors.append(str(exc))
                log.debug("checkpoint sync: %s", exc)

    def scan(self) -> int:
        """Upload what is new or changed, as it is now; delete in S3 what is gone here."""
        with self._lock:
            if self._halted():
                return 0
            here: Dict[str, Path] = {}
            if self.folder.is_dir():
                for path in self.folder.rglob("*"):
                    if path.is_file():
                        here[path.relative_to(self.folder).as_posix()] = path
            n = 0
            for rel, path in sorted(here.items()):
                if self._halted():
                    return n  # stopped in the middle of a scan: nothing more goes up
                try:
                    st = path.stat()
                    data = path.read_bytes()  # perhaps half written: uploaded as it is
                except OSError:
                    continue  # gone meanwhile: the next scan deletes it
                sig = (st.st_size, st.st_mtime_ns)
                if self._sent.get(rel) == sig:
                    continue
                self.s3.put_bytes(self.base.join(rel), data)
                self._sent[rel] = sig
                n += 1
            for rel in sorted(set(self._sent) - set(here)):  # deleted locally: deleted in S3
                if self._halted():
                    return n
                self.s3.delete(self.base.join(rel))
                del self._sent[rel]
                self.deleted += 1
            self.uploaded += n
            return n

    def sent(self) -> Dict[str, Tuple[int, int]]:
        """``{relative path: (size, mtime_ns)}`` of what is in S3 now, as this agent put it there
        (or restored it from there)."""
        with self._lock:
            return dict(self._sent)

    def restart_ready(self, within: str = "") -> bool:
        """Whether what a restart resumes from has gone up since :meth:`restore`: the marker of a
        ``latest`` snapshot (rectrain writes it after the files, once they are
        ``RECTRAIN_SEAL_AFTER_S`` old) and the run's state mirrored beside the checkpoints
        (``run/run-state.json``). SageMaker uploads nothing after a stop, so an interruption
        before both have gone up leaves a restart nothing to continue (``run-local
        --interrupt-after-checkpoint`` waits for this). ``within``: the job's folder in the
        checkpoint folder (a tuning trial's training job name), '' for the folder itself."""
        head = f"{within.strip('/')}/" if within.strip("/") else ""
        fresh = [rel[len(head):] for rel, sig in self.sent().items()
                 if rel.startswith(head) and self._restored_sigs.get(rel) != sig]
        return any(LATEST_MARKER.match(rel) for rel in fresh) and "run/run-state.json" in fresh

    def _halted(self) -> bool:
        return self._stopped.is_set() and not self._final

    def stop(self, final: bool = False) -> None:
        """The attempt ended. ``final``: it ended by itself (one last scan, as SageMaker
        uploads at the end of a job); otherwise it was stopped: nothing more goes up, even
        a scan in progress is the last one."""
        self._final = final
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        if final:
            self.scan()


def restore_and_start(s3: S3Service, folder: Path, uri: S3Uri, *, every: float = 0.5,
                      seed: Optional[int] = None) -> SageMakerCheckpointSync:
    """A fresh "instance": ``folder`` emptied, restored from ``uri``, then synced."""
    if folder.exists():
        for path in sorted(folder.rglob("*"), reverse=True):
            if path.is_file() or path.is_symlink():
                remove_file(path)
            else:
                remove_empty_dir(path)
    folder.mkdir(parents=True, exist_ok=True)
    sync = SageMakerCheckpointSync(s3, folder, uri, every=every,
                                   rng=random.Random(seed) if seed is not None else None)
    sync.restore()
    sync.start()
    return sync
