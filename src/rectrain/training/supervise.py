"""Supervising the engine: signals, the engine's process and its output stream.

The engine runs in its own session, so its data-loader workers die with it and a Ctrl-C
reaches rectrain, which forwards it (:class:`Stopper`) and still saves what is new.
:class:`EngineProcess` starts ``tools/train.py``, appends every output line to ``train.log``
before handing it on, enforces ``--max-seconds`` and never leaves the engine running behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, Dict, Iterator, List, Optional, Sequence, Type

from rectrain.errors import EnvironmentProblem, Interrupted
from rectrain.machine.processes import die_with_parent
from rectrain.outputs import open_append

ENGINE_STOP_S = 30.0  # grace after SIGTERM before SIGKILL


class Stopper:
    """Forwards SIGTERM/SIGINT to the engine's process group and remembers why it stopped
    (``reason``: ``interrupted`` by a signal, ``stopped`` by a limit, ``failed``)."""

    def __init__(self) -> None:
        self.proc: Optional[subprocess.Popen] = None
        self.reason: Optional[str] = None
        self.signum: Optional[int] = None
        self.raise_early = True  # a signal before the engine starts raises Interrupted
        self._old: Dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()

    def _handle(self, signum: int, frame: Any) -> None:  # noqa: ARG002
        if self.reason is None:
            self.reason = "interrupted"
            self.signum = signum
        if self.proc is None and self.raise_early:
            # still preparing (restoring from S3, choosing the checkpoint): nothing new to save
            self.raise_early = False
            raise Interrupted(f"interrupted by signal {signum} before the engine started; "
                              "nothing new to save.", "rerun the same command with --resume.")
        self.kill(signal.SIGTERM)

    def stop(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.kill(signal.SIGTERM)

    def kill(self, sig: int) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)  # the engine leads its own group (data loader workers too)
        except (ProcessLookupError, PermissionError):
            pass


class EngineProcess:
    """``with EngineProcess(...) as engine: for raw in engine.lines(): ...; rc = engine.wait()``.

    Entering starts the engine (``header`` is written to ``log_path`` first); leaving while it
    still runs (rectrain itself failed) stops it: SIGTERM, then SIGKILL after ENGINE_STOP_S.
    With ``max_seconds``, :attr:`budget_spent` turns true after that many seconds (the runner
    stops at the next checkpoint) and the engine is stopped anyway at 1.25x + 120 s.
    """

    def __init__(self, argv: Sequence[str], env: Dict[str, str], stopper: Stopper, log_path: Path,
                 *, header: str, max_seconds: Optional[float] = None) -> None:
        self.argv = list(argv)
        self.env = env
        self.stopper = stopper
        self.log_path = log_path
        self.header = header
        self.max_seconds = max_seconds
        self.proc: Optional[subprocess.Popen] = None
        self._budget = threading.Event()
        self._timers: List[threading.Timer] = []
        self._log: Any = None
        self.log_error: Optional[OSError] = None  # train.log could not be written (a full disk)

    def __enter__(self) -> EngineProcess:
        self._log = open_append(self.log_path, "ab")
        try:
            self._log.write(self.header.encode())
            self._log.flush()
            try:
                self.proc = subprocess.Popen(self.argv, env=self.env, stdout=subprocess.PIPE,
                                             stderr=subprocess.STDOUT, start_new_session=True,
                                             bufsize=0, preexec_fn=die_with_parent())
            except OSError as exc:
                raise EnvironmentProblem(f"cannot start the engine ({self.argv[0]}): {exc}.",
                                         "run ./setup.sh or `rectrain doctor`.") from exc
        except BaseException:
            self._log.close()
            raise
        self.stopper.proc = self.proc
        if self.stopper.reason:  # a signal arrived just before the engine existed
            self.stopper.kill(signal.SIGTERM)
        if self.max_seconds:
            self._timers = [threading.Timer(self.max_seconds, self._budget.set),
                            threading.Timer(self.max_seconds * 1.25 + 120, self.stopper.stop,
                                            args=("stopped",))]
            for timer in self._timers:
                timer.daemon = True
                timer.start()
        return self

    @property
    def budget_spent(self) -> bool:
        return self._budget.is_set()

    def lines(self) -> Iterator[bytes]:
        """The engine's output, line by line as bytes, each appended to the log first."""
        assert self.proc is not None and self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            if self.log_error is None:
                try:
                    self._log.write(raw)
                    self._log.flush()
                except OSError as exc:  # a full disk: the output still flows (the run decides)
                    self.log_error = exc
            yield raw

    def wait(self) -> int:
        """The engine's exit status once its output has ended (SIGKILL after ENGINE_STOP_S)."""
        assert self.proc is not None
        try:
            rc = self.proc.wait(timeout=ENGINE_STOP_S)
        except subprocess.TimeoutExpired:
            self.stopper.kill(signal.SIGKILL)
            rc = self.proc.wait()
        self._cancel_timers()
        return rc

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        try:
            if self.proc is not None and self.proc.poll() is None:  # rectrain itself failed
                self.stopper.kill(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=ENGINE_STOP_S)
                except subprocess.TimeoutExpired:
                    self.stopper.kill(signal.SIGKILL)
        finally:
            self._cancel_timers()
            try:
                self._log.close()
            except OSError as exc:  # the last flush on a full disk
                self.log_error = self.log_error or exc
