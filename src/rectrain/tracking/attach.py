"""Log files to a finished run's MLflow run afterwards: the exported model (``rectrain
export``, the SageMaker entrypoint's ``/opt/ml/model``) and evaluation reports."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Union

from rectrain.logs import get_logger
from rectrain.redaction import real_uri
from rectrain.tracking.mlflow_sink import mlflow_available, mlflow_client

log = get_logger("tracking")


def tracked_run(run_dir: Union[str, Path]) -> Dict[str, Any]:
    """The tracking part of ``RUN/run-state.json`` (``{}`` when the run was not tracked)."""
    path = Path(run_dir) / "run-state.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    tracking = data.get("tracking") if isinstance(data, dict) else None
    return tracking if isinstance(tracking, dict) else {}


def attach_to_run(run_dir: Union[str, Path], items: Iterable[Union[str, Path]], *,
                  subdir: Optional[str] = None, metrics: Optional[Dict[str, float]] = None) -> List[str]:
    """Log ``items`` (files or folders) and ``metrics`` to the MLflow run of ``run_dir``.
    Returns what was logged; does nothing (and says why at debug level) when the run was not
    tracked in MLflow or mlflow is not installed. A failure is a warning, never an error:
    the files stay where they are."""

    info = tracked_run(run_dir).get("mlflow") or {}
    if not info.get("run_id") or not info.get("tracking_uri"):
        log.debug("%s has no MLflow run: nothing attached", run_dir)
        return []
    if not mlflow_available():
        log.warning("the run %s is tracked in MLflow (%s) but mlflow is not installed here: "
                    "the files were not logged there. Fix: pip install 'rectrain[tracking]'.",
                    run_dir, info["tracking_uri"])
        return []
    logged: List[str] = []
    try:
        # the state file keeps the URI redacted: the real one comes from where the user gave it
        uri = real_uri(info["tracking_uri"], os.environ.get("MLFLOW_TRACKING_URI"))
        client = mlflow_client(str(uri))
        for item in items:
            p = Path(item)
            if p.is_dir():
                client.log_artifacts(info["run_id"], str(p), subdir or p.name)
            elif p.is_file():
                client.log_artifact(info["run_id"], str(p), subdir)
            else:
                continue
            logged.append(str(p))
        if metrics:
            import time

            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            client.log_batch(info["run_id"], metrics=[Metric(k, float(v), now, 0)
                                                      for k, v in metrics.items()])
    except Exception as exc:  # noqa: BLE001 - tracking never fails the command
        log.warning("could not log to MLflow run %s at %s (%s: %s); the files are kept locally.",
                    info["run_id"], info["tracking_uri"], type(exc).__name__, str(exc)[:200])
        return logged
    if logged:
        log.info("logged %s to MLflow run %s", ", ".join(Path(x).name for x in logged), info["run_id"])
    return logged
