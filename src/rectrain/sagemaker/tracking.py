"""Experiment tracking in a SageMaker training job (docs/tracking.md).

- TensorBoard: the container writes events to ``/opt/ml/output/tensorboard``; the request's
  ``TensorBoardOutputConfig`` makes SageMaker upload them while the job runs (default
  ``<output>/<job name>/tensorboard``), which SageMaker's TensorBoard app reads.
- MLflow: ``mlflow_uri`` (an ``http(s)://`` server or a SageMaker managed MLflow tracking
  server ARN) reaches the container as ``MLFLOW_TRACKING_URI`` (``mlflow_experiment`` as
  ``MLFLOW_EXPERIMENT_NAME``); the training runner logs there as it does locally.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

TENSORBOARD_LOCAL = "/opt/ml/output/tensorboard"


def tensorboard_uri(job: Any, name: str) -> Optional[str]:
    if not getattr(job, "tensorboard", True):
        return None
    given = getattr(job, "tensorboard_s3", None)
    if given:
        return str(given)
    return f"{str(job.output).rstrip('/')}/{name}/tensorboard"


def add_tracking(request: Dict[str, Any], job: Any, name: str) -> None:
    """Add ``TensorBoardOutputConfig`` and the MLflow environment to a CreateTrainingJob
    request (in place)."""
    uri = tensorboard_uri(job, name)
    if uri:
        request["TensorBoardOutputConfig"] = {"S3OutputPath": uri, "LocalPath": TENSORBOARD_LOCAL}
    env = request.setdefault("Environment", {})
    if getattr(job, "mlflow_uri", None):
        env["MLFLOW_TRACKING_URI"] = str(job.mlflow_uri)
    if getattr(job, "mlflow_experiment", None):
        env["MLFLOW_EXPERIMENT_NAME"] = str(job.mlflow_experiment)
