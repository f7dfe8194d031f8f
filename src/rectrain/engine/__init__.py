"""The training engine: PaddleOCR's own ``tools/train.py``, ``tools/eval.py`` and
``tools/export_model.py``, run unmodified as subprocesses."""

from rectrain.engine.launch import engine_command
from rectrain.engine.locate import Engine, find_engine

__all__ = ["Engine", "engine_command", "find_engine"]
