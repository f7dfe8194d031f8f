"""One owner per run: an exclusive lock on the run folder and a lease on the checkpoint prefix.

- :class:`RunLock`: ``<run>/.rectrain-run.lock``, ``flock``-ed for the whole run. The kernel
  drops the lock when its process dies (``kill -9`` included), so a stale lock is recovered by
  itself; the file says which pid on which host holds it, for the refusal.
- :class:`PrefixLease`: ``<prefix>/_owner.lease`` in S3 (run id, host, pid, heartbeat). A
  second run on the same ``--checkpoint-s3`` prefix, and ``ckpt push`` into it, are refused
  (exit 2, before anything is trained or written) while the lease is alive: its heartbeat is
  younger than the lease's time to live, or its process still runs on this host. An expired
  lease (or one of a dead process on this host) is taken over, and the takeover is logged.
  S3 has no lock: two runs started together both write their claim, wait, and read it back;
  the one whose claim is not there any more gives way (the wait: ``RECTRAIN_LEASE_SETTLE_S``,
  1 s, longer than any writer's gap between its read and its write).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from rectrain.checkpoints.remote import is_not_found
from rectrain.errors import StorageError, UserError
from rectrain.logs import get_logger
from rectrain.machine.processes import pid_alive
from rectrain.outputs import open_lock
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import S3Service

log = get_logger("checkpoints")

LOCK_FILE = ".rectrain-run.lock"
LEASE_KEY = "_owner.lease"
LEASE_TTL_S = 120.0  # a lease whose heartbeat is older is expired (RECTRAIN_LEASE_TTL_S)
SETTLE_S = 1.0  # between writing a claim and reading it back (RECTRAIN_LEASE_SETTLE_S)


def _host() -> str:
    return socket.gethostname()


class RunBusy(UserError):
    """Another process owns the run folder or the checkpoint prefix (exit 2)."""


class RunLock:
    """The exclusive lock on a run folder for the whole run (see the module's docstring)."""

    def __init__(self, run: Path) -> None:
        self.path = Path(run) / LOCK_FILE
        self._fd: Optional[int] = None

    @classmethod
    def acquire(cls, run: Path) -> RunLock:
        """Lock ``run`` (which exists); :class:`RunBusy` naming the holder when it is held."""
        import fcntl

        lock = cls(run)
        fd = open_lock(lock.path)
        for attempt in range(6):  # `monitor` holds a shared lock for an instant: try again
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if attempt < 5:
                    time.sleep(0.1)
        else:
            holder = lock._holder(fd)
            os.close(fd)
            raise RunBusy(
                f"{run} is in use by another rectrain process ({holder}); a second one would mix "
                "its files with the first one's.",
                "wait for that run to end (`rectrain monitor " + str(run) + "`), stop it, or choose "
                "another --run-dir.") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": _host(), "since": time.time()}).encode())
        lock._fd = fd
        return lock

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            data = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
            return f"pid {data.get('pid', '?')} on host {data.get('host', '?')}"
        except (OSError, ValueError):
            return "pid ? on host ?"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock; the file stays (it is rectrain's)
            self._fd = None

    @staticmethod
    def held(run: Path) -> Optional[bool]:
        """Whether a live process holds ``run``'s lock (None: the run never had one)."""
        import fcntl

        path = Path(run) / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)  # also drops the shared lock just taken
        return False


@dataclass
class Lease:
    run_id: str
    host: str
    pid: int
    heartbeat: float
    ttl_s: float
    claim: str  # unique per claim: tells two claims of one host apart

    def describe(self) -> str:
        age = max(0.0, time.time() - self.heartbeat)
        run = f"run {self.run_id}, " if self.run_id else ""
        return f"{run}pid {self.pid} on host {self.host}, heartbeat {age:.0f} s ago"

    def alive(self) -> bool:
        """Its owner still runs: on this host its process (this process's own earlier lease,
        left by a run that ended without releasing it, is not), elsewhere a recent heartbeat."""
        if self.host == _host():
            return self.pid != os.getpid() and pid_alive(self.pid)
        return time.time() - self.heartbeat < self.ttl_s


class PrefixLease:
    """The lease on a checkpoint prefix, kept alive by a heartbeat thread until released."""

    def __init__(self, s3: S3Service, prefix: S3Uri, run_id: str = "",
                 ttl_s: float = LEASE_TTL_S, settle_s: float = SETTLE_S) -> None:
        self.s3 = s3
        self.settle_s = settle_s  # longer than the gap between another run's read and write
        self.uri = S3Uri(prefix.bucket, prefix.key.rstrip("/")).join(LEASE_KEY)
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.mine = Lease(run_id, _host(), os.getpid(), time.time(), ttl_s, uuid.uuid4().hex)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # reading ----------------------------------------------------------------------------
    def current(self) -> Optional[Lease]:
        try:
            body = self.s3.read_bytes(self.uri)
        except StorageError as exc:
            if is_not_found(exc):
                return None
            raise
        try:
            data: Any = json.loads(body.decode("utf-8"))
            return Lease(str(data["run_id"]), str(data["host"]), int(data["pid"]),
                         float(data["heartbeat"]), float(data.get("ttl_s", self.ttl_s)),
                         str(data.get("claim", "")))
        except (ValueError, KeyError, TypeError):
            log.warning("the lease %s is damaged; taking it over", self.uri)
            return None

    def _refuse(self, other: Lease, what: str) -> RunBusy:
        return RunBusy(
            f"{self.prefix} is in use by another run ({other.describe()}); {what} would mix its "
            "checkpoints with that run's.",
            "wait for that run to end, or use another --checkpoint-s3 prefix (each run its own). If "
            f"that machine is gone, its lease expires {other.ttl_s:.0f} s after its last heartbeat "
            "and is then taken over.")

    def check_free(self, what: str) -> None:
        """Refuse (:class:`RunBusy`) when another owner's lease is alive (``ckpt push``)."""
        other = self.current()
        if other is not None and other.alive() and other.claim != self.mine.claim:
            raise self._refuse(other, what)

    # owning -----------------------------------------------------------------------------
    def acquire(self, what: str = "a second run") -> PrefixLease:
        """Claim the prefix (see the module's docstring) and start the heartbeat."""
        other = self.current()
        if other is not None and other.alive():
            raise self._refuse(other, what)
        if other is not None:
            log.warning("taking over the expired lease on %s (%s)", self.prefix, other.describe())
        self._write()
        time.sleep(self.settle_s)
        now = self.current()
        if now is None or now.claim != self.mine.claim:
            if now is not None:
                raise self._refuse(now, what)
            self._write()
        self._thread = threading.Thread(target=self._beat, name="prefix-lease", daemon=True)
        self._thread.start()
        return self

    def set_run_id(self, run_id: str) -> None:
        if run_id and run_id != self.mine.run_id:
            self.mine.run_id = run_id
            self._write_quietly()

    def _write(self) -> None:
        self.mine.heartbeat = time.time()
        self.s3.put_bytes(self.uri, json.dumps(asdict(self.mine)).encode("utf-8"))

    def _write_quietly(self) -> None:
        try:
            self._write()
        except StorageError as exc:  # the next beat tries again; training goes on
            log.warning("could not renew the lease on %s: %s", self.prefix, exc.message)

    def _beat(self) -> None:
        while not self._stop.wait(max(1.0, self.ttl_s / 4)):
            self._write_quietly()

    def release(self) -> None:
        """Stop the heartbeat and delete the lease if it is still this run's."""
        self._stop.set()
        if self._thread is None:
            return
        self._thread.join(timeout=5)
        self._thread = None
        try:
            now = self.current()
            if now is not None and now.claim == self.mine.claim:
                self.s3.delete(self.uri)
        except StorageError as exc:
            log.warning("could not release the lease on %s (it expires by itself): %s", self.prefix,
                        exc.message)


class Ownership:
    """What a run owns (its folder's lock, its prefix's lease), released together at its end."""

    def __init__(self) -> None:
        self.lock: Optional[RunLock] = None
        self.lease: Optional[PrefixLease] = None

    def lock_run(self, run: Path) -> None:
        if self.lock is None and Path(run).is_dir():
            self.lock = RunLock.acquire(run)

    def lease_prefix(self, s3: S3Service, prefix: S3Uri, ttl_s: float = LEASE_TTL_S,
                     settle_s: float = SETTLE_S) -> None:
        if self.lease is None:
            self.lease = PrefixLease(s3, prefix, ttl_s=ttl_s, settle_s=settle_s).acquire()

    def set_run_id(self, run_id: str) -> None:
        if self.lease is not None:
            self.lease.set_run_id(run_id)

    def release(self) -> None:
        if self.lease is not None:
            self.lease.release()
            self.lease = None
        if self.lock is not None:
            self.lock.release()
            self.lock = None
