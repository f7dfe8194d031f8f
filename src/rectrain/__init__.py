"""rectrain: train PaddleOCR text-recognition models locally or on Amazon SageMaker.

The public Python API keeps the names users know; each is imported lazily so that
``import rectrain`` and the CLI start fast.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict

from rectrain._version import __version__

_API: Dict[str, str] = {
    "upload_recognition_data_to_s3": "rectrain.storage.api",
    "download_recognition_data_from_s3": "rectrain.storage.api",
    "sync_recognition_checkpoints_to_s3": "rectrain.checkpoints.api",
    "download_recognition_checkpoints_from_s3": "rectrain.checkpoints.api",
    "validate_recognition_annotation_format": "rectrain.data.validate",
    "convert_detection_to_recognition_format": "rectrain.data.convert",
    "create_recognition_training_config": "rectrain.config.build",
    "start_recognition_training": "rectrain.training.runner",
    "monitor_recognition_training_progress": "rectrain.monitor.follow",
    "export_model": "rectrain.model.export",
    "evaluate_model": "rectrain.model.evaluate",
    "predict": "rectrain.model.predict",
    "launch_training_job": "rectrain.sagemaker.launch",
    "follow_job": "rectrain.sagemaker.follow",
    "run_local": "rectrain.emulator.run_local",
    "run_doctor": "rectrain.doctor",
    "run_demo": "rectrain.demo",
    "setup_logging": "rectrain.logs",
}

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'rectrain' has no attribute {name!r}")
    if name == "monitor_recognition_training_progress":
        _plug_sagemaker_into_monitor()
    return getattr(importlib.import_module(module), name)


def _plug_sagemaker_into_monitor() -> None:
    """The Python API is an entry point: like ``rectrain monitor``, its monitor follows
    SageMaker jobs by name (the monitor feature itself does not know SageMaker)."""
    # Imported here, not at the top, so that `import rectrain` stays fast.
    from rectrain.monitor.follow import register_job_source
    from rectrain.sagemaker.follow import job_summary

    register_job_source(job_summary)


def __dir__() -> list:
    return __all__
