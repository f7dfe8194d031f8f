"""Export a checkpoint with the engine's exporter, then evaluate and predict with the exported
model through the engine's own inference code (``rectrain export / evaluate / predict``).

``export_model``, ``evaluate_model``, ``Recognizer`` are importable from here, loaded on first
use so that importing the package stays cheap (no Paddle, no OpenCV). The ``predict`` function
lives in ``rectrain.model.predict`` (the module of the same name would shadow it here).
"""

from __future__ import annotations

import importlib
from typing import Any, Dict

_API: Dict[str, str] = {
    "export_model": "rectrain.model.export",
    "evaluate_model": "rectrain.model.evaluate",
    "EvalReport": "rectrain.model.evaluate",
    "Prediction": "rectrain.model.predict",
    "Recognizer": "rectrain.model.predict",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'rectrain.model' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
