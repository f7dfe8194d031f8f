"""Experiment tracking: one small run-tracker interface over MLflow and TensorBoard.

The training runner (a feature layer above this package) opens a :class:`RunTracking` when a
run starts, feeds it every metric record it writes to ``metrics.jsonl``, and finishes it with
the run's files. Each backend is optional at run time (``pip install 'rectrain[tracking]'``):

- TensorBoard (``tensorboardX``): event files under ``RUN/tensorboard/`` (SageMaker:
  ``/opt/ml/output/tensorboard``), on by default when the package is installed;
- MLflow: when ``MLFLOW_TRACKING_URI`` is set or a URI is given. The MLflow run id is kept in
  the run's ``run-state.json``, so a resumed run (also a SageMaker spot restart, which restores
  that file) continues the same MLflow run.

Tracking never stops training: what could not be logged is written to the run's
``problem-log.md`` at the end. This package imports only errors/logs/fsutil below it.
"""

from __future__ import annotations

from rectrain.tracking.attach import attach_to_run
from rectrain.tracking.core import (
    RunTracking,
    TrackingOptions,
    record_metrics,
)

__all__ = ["RunTracking", "TrackingOptions", "attach_to_run", "record_metrics"]
