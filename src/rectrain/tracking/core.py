"""The run tracker: one facade over the tracking backends (MLflow, TensorBoard).

The runner calls, in order::

    tracking = RunTracking.begin(run_dir, options, state.tracking, config_path=..., config=...,
                                 info={...})            # creates or reopens the backends' runs
    state.tracking = tracking.state                     # persisted: the MLflow run id
    tracking.record(record)                             # every metrics.jsonl record
    tracking.finish(status, artifacts=[...])            # ends the runs; problems -> problem-log.md

No method raises because a backend failed: a backend that fails is noted, retried where that
makes sense, and what it did not log is written to ``RUN/problem-log.md`` by :meth:`finish`.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from rectrain.logs import get_logger
from rectrain.outputs import open_append
from rectrain.redaction import redact, redact_mapping
from rectrain.tracking.mlflow_sink import MlflowSink, mlflow_available
from rectrain.tracking.params import run_params, run_tags
from rectrain.tracking.sink import Sink
from rectrain.tracking.tensorboard import TensorBoardSink, tensorboard_available

log = get_logger("tracking")

INSTALL_HINT = "pip install 'rectrain[tracking]'"
# record keys that are bookkeeping, not metrics
NOT_METRICS = {"global_step", "epoch", "epochs", "engine_epoch", "engine_epochs", "segment",
               "unix_time", "time", "engine_time", "type", "path", "name", "is_best", "saved_best",
               "eta_s", "best_epoch", "best_global_step"}
METRIC_TYPES = {"train", "eval", "best"}


@dataclass
class TrackingOptions:
    """Where a run is tracked. ``None`` fields take their defaults from MLflow's environment:
    ``MLFLOW_TRACKING_URI``, ``MLFLOW_EXPERIMENT_NAME`` (else ``rectrain``); TensorBoard events
    go to ``RUN/tensorboard`` unless ``tensorboard_dir`` (``RECTRAIN_TENSORBOARD_DIR``, which the
    entry points read into it) says otherwise."""

    mlflow_uri: Optional[str] = None
    experiment: Optional[str] = None
    run_name: Optional[str] = None
    mlflow: bool = True  # False: never log to MLflow, even with MLFLOW_TRACKING_URI set
    tensorboard: bool = True
    tensorboard_dir: Optional[str] = None

    def resolved_mlflow_uri(self) -> Optional[str]:
        if not self.mlflow:
            return None
        return self.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI") or None

    def resolved_experiment(self) -> str:
        return self.experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or "rectrain"

    def resolved_tensorboard_dir(self, run_dir: Path) -> Optional[Path]:
        if not self.tensorboard:
            return None
        given = self.tensorboard_dir
        return Path(given).expanduser() if given else run_dir / "tensorboard"


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return None if math.isnan(number) or math.isinf(number) else number


def record_metrics(record: Dict[str, Any]) -> Tuple[Optional[int], Dict[str, float]]:
    """``(step, {"train/loss": 1.2, ...})`` of one metrics.jsonl record; ``(None, {})`` for
    records that carry no metrics (save, resume). Names are ``<type>/<key>``."""
    kind = record.get("type")
    if kind not in METRIC_TYPES:
        return None, {}
    values: Dict[str, float] = {}
    for key, value in record.items():
        if key in NOT_METRICS:
            continue
        number = _number(value)
        if number is not None:
            values[f"{'eval' if kind == 'best' else kind}/{key}"] = number
    step = record.get("global_step")
    return (int(step) if isinstance(step, (int, float)) else 0), values


class RunTracking:
    """The run's trackers (possibly none)."""

    def __init__(self, run_dir: Path, sinks: List[Sink], notes: Optional[List[str]] = None) -> None:
        self.run_dir = run_dir
        self.sinks = sinks
        self.notes: List[str] = list(notes or [])  # problems found before any sink started
        self.finished = False

    # ---------------------------------------------------------------- opening
    @classmethod
    def begin(cls, run_dir: Union[str, Path], options: Optional[TrackingOptions],
              saved: Optional[Dict[str, Any]] = None, *, config_path: Optional[Union[str, Path]] = None,
              config: Optional[Dict[str, Any]] = None, info: Optional[Dict[str, Any]] = None,
              enabled: bool = True) -> RunTracking:
        """Open every configured backend for the run in ``run_dir``. ``saved`` is what
        :attr:`state` returned in an earlier attempt of the same run (the MLflow run id).
        ``enabled=False`` (hosts other than the first): nothing is tracked."""
        run = Path(run_dir)
        opts = options or TrackingOptions()
        saved = dict(saved or {})
        info = dict(info or {})
        if not enabled:
            return cls(run, [])
        sinks: List[Sink] = []
        notes: List[str] = []
        tb_dir = opts.resolved_tensorboard_dir(run)
        if tb_dir is not None:
            if tensorboard_available():
                sinks.append(TensorBoardSink(tb_dir))
            else:
                log.warning("TensorBoard events are not written: tensorboardX is not installed. "
                            "Fix: %s.", INSTALL_HINT)
        uri = opts.resolved_mlflow_uri()
        if uri:
            if mlflow_available():
                previous = saved.get("mlflow") or {}
                if previous.get("run_id") and previous.get("tracking_uri") not in (None, uri, redact(uri)):
                    log.warning("this run was tracked at %s; now logging to %s (a new MLflow run)",
                                previous.get("tracking_uri"), uri)
                    previous = {}
                sinks.append(MlflowSink(uri, opts.resolved_experiment(),
                                        run_name=opts.run_name or info.get("run_name") or run.name,
                                        run_id=previous.get("run_id")))
            else:
                notes.append(f"MLflow: MLFLOW_TRACKING_URI is {uri} but the mlflow package is not "
                             f"installed: no parameter, metric or artifact of this run was logged "
                             f"there. Fix: {INSTALL_HINT} (or mlflow-skinny).")
                log.warning("%s", notes[-1])
        tracking = cls(run, sinks, notes)
        if not sinks:
            return tracking
        # what is sent goes through the one redaction too (a URI with a password in the config)
        params = redact_mapping(run_params(config or {}, Path(config_path) if config_path else None, info))
        tags = redact_mapping(run_tags(config or {}, Path(config_path) if config_path else None, info))
        resume_step = int(info.get("resume_step") or 0)
        cfg_file = Path(config_path) if config_path else None
        for sink in sinks:
            try:
                sink.start(params=params, tags=tags, config_file=cfg_file, resume_step=resume_step)
            except Exception as exc:  # noqa: BLE001 - a tracker never stops training
                sink.problems.append(f"{sink.name}: could not start ({type(exc).__name__}: "
                                     f"{str(exc)[:300]}); nothing was logged there.")
                log.warning("%s", sink.problems[-1])
        return tracking

    @property
    def state(self) -> Dict[str, Any]:
        """What to keep in run-state.json so a resumed run continues the same runs."""
        out: Dict[str, Any] = {}
        for sink in self.sinks:
            out.update(sink.state())
        return out

    @property
    def active(self) -> List[str]:
        return [s.name for s in self.sinks]

    # ---------------------------------------------------------------- logging
    def record(self, record: Dict[str, Any]) -> None:
        step, values = record_metrics(record)
        if step is None or not values:
            return
        wall = float(record.get("unix_time") or time.time())
        for sink in self.sinks:
            try:
                sink.log(step, values, wall)
            except Exception as exc:  # noqa: BLE001
                sink.problems.append(f"{sink.name}: metrics at step {step} not logged "
                                     f"({type(exc).__name__}: {str(exc)[:200]}).")

    def records(self, records: Iterable[Dict[str, Any]]) -> None:
        for record in records:
            self.record(record)

    def artifact(self, path: Union[str, Path], subdir: Optional[str] = None) -> None:
        p = Path(path)
        if not p.exists():
            return
        for sink in self.sinks:
            try:
                sink.artifact(p, subdir)
            except Exception as exc:  # noqa: BLE001
                sink.problems.append(f"{sink.name}: artifact {p} not logged ({exc}).")

    def finish(self, status: str, artifacts: Iterable[Union[str, Path]] = (),
               timeout: float = 120.0) -> List[str]:
        """Log ``artifacts`` (files or folders that exist), end every run with ``status``
        (completed / stopped / interrupted / failed) and write what was not logged to
        ``RUN/problem-log.md``. Returns those problems. Safe to call twice."""
        if self.finished:
            return []
        self.finished = True
        for item in artifacts:
            self.artifact(item)
        problems = list(self.notes)
        for sink in self.sinks:
            try:
                sink.finish(status, timeout)
            except Exception as exc:  # noqa: BLE001
                sink.problems.append(f"{sink.name}: could not end the run ({exc}).")
            problems += sink.problems
        if problems:
            write_problems(self.run_dir / "problem-log.md", problems)
        return problems


def write_problems(path: Path, problems: List[str]) -> None:
    """One problem-log entry (the runner's format: date, symptom, cause, fix) in one write."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    lines = "".join(f"  - {p}\n" for p in problems[:20])
    more = f"  - … and {len(problems) - 20} more\n" if len(problems) > 20 else ""
    entry = (f"\n## {stamp} — tracking-incomplete\n"
             f"- Symptom: experiment tracking did not log everything of this run:\n{lines}{more}"
             f"- Cause: a tracking backend was unreachable, failed or is not installed; training "
             f"was not affected (metrics.jsonl, train.log and the checkpoints are complete).\n"
             f"- Fix: check the tracking server (MLFLOW_TRACKING_URI) and `{INSTALL_HINT}`; "
             f"every value is in the run's metrics.jsonl and curves.png.\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_append(path) as fh:
        fh.write(redact(entry))
