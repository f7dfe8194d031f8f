"""The training runner's link to :mod:`rectrain.tracking` (MLflow, TensorBoard): what a run
tells its trackers about itself, and where the MLflow run id is kept (run-state.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from rectrain.tracking import RunTracking, TrackingOptions

__all__ = ["TrackingOptions", "open_run_tracking", "tracking_info"]


def tracking_info(engine: Any, device: str, gpus: Optional[Sequence[int]], nnodes: int, plan: Any,
                  run: Path, state: Any, resume_step: int, job: Optional[str] = None,
                  instance_type: Optional[str] = None) -> Dict[str, Any]:
    """Tags and plan parameters of the run (engine, device, sub-epochs, SageMaker job name and
    instance type, as the settings have them)."""
    return {"engine": getattr(engine, "kind", None), "engine_version": getattr(engine, "version", None),
            "device": device, "gpus": list(gpus or []), "nnodes": nnodes,
            "sub_epochs": getattr(plan, "sub_epochs", None),
            "engine_epochs": getattr(plan, "engine_epochs", None), "run_dir": str(run),
            "rectrain_run_id": getattr(state, "run_id", None), "sagemaker_job": job,
            "instance_type": instance_type,
            "resume_step": resume_step, "run_name": job or run.name}


def open_run_tracking(options: Optional[TrackingOptions], run: Path, config_path: Path, cfg: Dict[str, Any],
                      *, engine: Any, device: str, gpus: Optional[Sequence[int]], nnodes: int,
                      node_rank: int, plan: Any, state: Any, resume_step: int,
                      job: Optional[str] = None, instance_type: Optional[str] = None) -> RunTracking:
    """Open the run's trackers (first host only) and keep their ids in ``state.tracking``
    (the caller saves the state)."""
    tracking = RunTracking.begin(
        run, options, getattr(state, "tracking", None) or {}, config_path=config_path, config=cfg,
        info=tracking_info(engine, device, gpus, nnodes, plan, run, state, resume_step, job,
                           instance_type),
        enabled=node_rank == 0)
    state.tracking = {**(getattr(state, "tracking", None) or {}), **tracking.state}
    return tracking
