"""MLflow: one MLflow run per rectrain run, continued across resumes.

Works with any tracking URI MLflow's client understands: ``http://host:5000`` (``mlflow
server``), a local ``file:`` or ``sqlite:`` store, Databricks, and SageMaker's managed MLflow
(an ``arn:aws:sagemaker:...:mlflow-tracking-server/NAME`` URI, with the ``sagemaker-mlflow``
plugin installed). Calls run on a background thread, opening the run included: training
waits for the server at most ``START_WAIT_S`` seconds, whether it is down or never answers.
Values that could not be sent (the run not open yet, the server away) are kept and retried
every ``RETRY_S`` seconds and, if still unsent when the run ends, listed in the run's problem
log. A resume continues the same MLflow run: only the server's answer that the run does not
exist starts a new one (a timeout or a 5xx while looking it up is retried).

MLflow's own HTTP retries (7 by default, with exponential back-off: minutes against a dead
server) are lowered to ``MLFLOW_HTTP_REQUEST_MAX_RETRIES=2`` / timeout 30 s, and its "View run"
line on stdout is suppressed, unless the environment sets those variables.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from rectrain.logs import get_logger
from rectrain.redaction import redact
from rectrain.tracking.sink import Sink

log = get_logger("tracking.mlflow")

RETRY_S = 30.0
START_WAIT_S = 5.0  # the most a run waits for MLflow before training starts
BATCH_S = 2.0
MAX_PENDING = 100_000  # metric values kept for a retry while the server is away
BATCH_METRICS = 1000  # MLflow's log_batch limit
BATCH_PARAMS = 100
STATUS = {"completed": "FINISHED", "stopped": "FINISHED", "interrupted": "KILLED", "failed": "FAILED"}
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
                 # the client prints "View run ... at" on stdout: it would corrupt --display json
                 "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


def mlflow_available() -> bool:
    try:
        return importlib.util.find_spec("mlflow") is not None
    except (ImportError, ValueError):  # a broken install, or blocked in sys.modules
        return False


def mlflow_client(uri: str) -> Any:
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _not_found(exc: BaseException) -> bool:
    """MLflow's answer that a run does not exist (not a timeout, a reset or a 5xx)."""
    return getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:200]}"


class MlflowSink(Sink):
    name = "MLflow"

    def __init__(self, uri: str, experiment: str, *, run_name: str, run_id: Optional[str] = None) -> None:
        super().__init__()
        self.uri = uri
        self.experiment = experiment
        self.run_name = run_name
        self.run_id = run_id
        self.experiment_id: Optional[str] = None
        self.client: Any = None
        self.resumed = False
        self._queue: queue.Queue = queue.Queue()
        self._pending: List[Tuple[str, float, int, int]] = []  # key, value, ms, step
        self._artifacts: List[Tuple[Path, Optional[str]]] = []
        self._dropped: List[Tuple[int, int]] = []  # (step, values) never queued / lost
        self._error: Optional[str] = None
        self._retry_at = 0.0
        self._thread: Optional[threading.Thread] = None
        self._opened = threading.Event()
        self._start_args: Tuple[Any, ...] = ({}, {}, None, 0)
        self.sent = 0

    # ---------------------------------------------------------------- start
    def start(self, *, params: Dict[str, str], tags: Dict[str, str], config_file: Optional[Path],
              resume_step: int) -> None:
        """Open the MLflow run on the worker thread; wait for it at most ``START_WAIT_S``: a
        server that is slow, down or never answers costs training no more than that. Values
        logged meanwhile wait in the worker and are sent once the run is open."""
        self.client = mlflow_client(self.uri)  # no request yet
        self._start_args = (params, tags, config_file, resume_step)
        self._thread = threading.Thread(target=self._work, name="rectrain-mlflow", daemon=True)
        self._thread.start()
        if not self._opened.wait(START_WAIT_S):
            log.warning("MLflow at %s has not answered within %.0f s; training starts, the run's "
                        "values are sent once it answers", self.uri, START_WAIT_S)

    def _try_open(self) -> bool:
        try:
            self._open(*self._start_args)
        except Exception as exc:  # noqa: BLE001 - retried every RETRY_S; reported at the end
            if self._error is None:
                log.warning("MLflow at %s: could not open the run (%s); training goes on, retrying "
                            "every %.0f s", self.uri, _short(exc), RETRY_S)
            self._error = _short(exc)
            self._retry_at = time.monotonic() + RETRY_S
            return False
        self._opened.set()
        return True

    def _open(self, params: Dict[str, str], tags: Dict[str, str], config_file: Optional[Path],
              resume_step: int) -> None:
        """Continue run ``run_id`` (a resume), or create one. Only an answer that the run does
        not exist (or was deleted) starts a new one; any other error is raised and retried, so
        a server that was briefly away never splits a run in two."""
        from mlflow.entities import Param, RunTag

        client = self.client
        run = None
        if self.run_id:
            try:
                run = client.get_run(self.run_id)
            except Exception as exc:
                if not _not_found(exc):
                    raise
                log.warning("MLflow run %s does not exist at %s; starting a new one", self.run_id, self.uri)
            if run is not None and run.info.lifecycle_stage == "deleted":
                log.warning("MLflow run %s was deleted; starting a new one", self.run_id)
                run = None
        if run is not None:
            self.resumed = True
            self.experiment_id = run.info.experiment_id
            client.update_run(self.run_id, status="RUNNING")
            client.set_tag(self.run_id, "rectrain.resumed_at_step", str(resume_step))
            client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()
                                                 if k not in ("mlflow.runName",)])
        else:
            self.experiment_id = self._experiment_id()
            new = client.create_run(self.experiment_id, run_name=self.run_name, tags=tags)
            self.run_id = new.info.run_id
            items = [Param(k, v) for k, v in params.items()]
            for i in range(0, len(items), BATCH_PARAMS):
                client.log_batch(self.run_id, params=items[i:i + BATCH_PARAMS])
            if config_file is not None and config_file.is_file():
                client.log_artifact(self.run_id, str(config_file), "config")
        log.info("MLflow: %s run %s at %s (experiment %s)", "continuing" if self.resumed else "logging to",
                 self.run_id, self.uri, self.experiment)

    def _experiment_id(self) -> str:
        client = self.client
        experiment = client.get_experiment_by_name(self.experiment)
        if experiment is not None:
            return str(experiment.experiment_id)
        try:
            return str(client.create_experiment(self.experiment))
        except Exception:  # noqa: BLE001 - created meanwhile by another run
            experiment = client.get_experiment_by_name(self.experiment)
            if experiment is None:
                raise
            return str(experiment.experiment_id)

    def state(self) -> Dict[str, Any]:
        if not self.run_id:
            return {}
        return {"mlflow": {"run_id": self.run_id, "tracking_uri": redact(self.uri),
                           "experiment_id": self.experiment_id, "experiment": self.experiment}}

    # ---------------------------------------------------------------- queueing
    def log(self, step: int, metrics: Dict[str, float], wall_time: float) -> None:
        if self._thread is None:
            self._dropped.append((step, len(metrics)))
            return
        self._queue.put(("metrics", step, metrics, int(wall_time * 1000)))

    def artifact(self, path: Path, subdir: Optional[str] = None) -> None:
        if self._thread is None:
            self.problems.append(f"MLflow ({self.uri}): artifact {path.name} not logged (no run).")
            return
        self._queue.put(("artifact", path, subdir))

    # ---------------------------------------------------------------- the worker
    def _work(self) -> None:
        self._try_open()
        done = False
        while not done:
            try:
                item = self._queue.get(timeout=BATCH_S)
            except queue.Empty:
                item = None
            while item is not None:
                if item[0] == "stop":
                    done = True
                elif item[0] == "metrics":
                    _, step, metrics, ms = item
                    self._pending += [(k, v, ms, step) for k, v in metrics.items()]
                else:
                    self._artifacts.append((item[1], item[2]))
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    item = None
            if len(self._pending) > MAX_PENDING:
                lost = self._pending[:len(self._pending) - MAX_PENDING]
                self._pending = self._pending[len(lost):]
                self._dropped += [(s, 1) for _, _, _, s in lost]
            due = done or time.monotonic() >= self._retry_at
            if due and (self._opened.is_set() or self._try_open()):
                self._send()

    def _send(self) -> None:
        from mlflow.entities import Metric

        try:
            while self._pending:
                chunk = self._pending[:BATCH_METRICS]
                self.client.log_batch(self.run_id, metrics=[Metric(k, v, ms, s) for k, v, ms, s in chunk])
                self._pending = self._pending[len(chunk):]
                self.sent += len(chunk)
            while self._artifacts:
                path, subdir = self._artifacts[0]
                if path.is_dir():
                    self.client.log_artifacts(self.run_id, str(path), subdir or path.name)
                else:
                    self.client.log_artifact(self.run_id, str(path), subdir)
                self._artifacts.pop(0)
            if self._error:
                log.info("MLflow at %s answers again; the values kept meanwhile are logged", self.uri)
            self._error = None
        except Exception as exc:  # noqa: BLE001 - keep the values and retry later
            if self._error is None:
                log.warning("MLflow at %s: logging failed (%s); training goes on, retrying every "
                            "%.0f s", self.uri, _short(exc), RETRY_S)
            self._error = _short(exc)
            self._retry_at = time.monotonic() + RETRY_S

    # ---------------------------------------------------------------- end
    def finish(self, status: str, timeout: float) -> None:
        if self._thread is None:
            if self._dropped:
                steps = [s for s, _ in self._dropped]
                self.problems.append(
                    f"MLflow ({self.uri}): {sum(n for _, n in self._dropped)} metric values of steps "
                    f"{min(steps)}-{max(steps)} not logged (the run could not be opened).")
            return
        self._queue.put(("stop",))
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.problems.append(f"MLflow ({self.uri}): still sending after {timeout:.0f} s when the "
                                 "run ended; the rest was not logged.")
            return
        if self._pending or self._dropped:
            steps = [s for _, _, _, s in self._pending] + [s for s, _ in self._dropped]
            count = len(self._pending) + sum(n for _, n in self._dropped)
            self.problems.append(f"MLflow ({self.uri}, run {self.run_id}): {count} metric values of "
                                 f"steps {min(steps)}-{max(steps)} not logged ({self._error}).")
        for path, _ in self._artifacts:
            self.problems.append(f"MLflow ({self.uri}, run {self.run_id}): artifact {path.name} not "
                                 f"logged ({self._error}).")
        if not self._opened.is_set():
            self.problems.append(f"MLflow ({self.uri}): could not start the run ({self._error}); "
                                 "nothing was logged there.")
            return
        try:
            self.client.set_terminated(self.run_id, status=STATUS.get(status, "FINISHED"))
        except Exception as exc:  # noqa: BLE001
            self.problems.append(f"MLflow ({self.uri}, run {self.run_id}): the run could not be "
                                 f"marked {STATUS.get(status, 'FINISHED')} ({_short(exc)}).")
