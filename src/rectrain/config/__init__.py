"""Training configs: presets written from the official PaddleOCR configs, and the builder
that changes what must change consistently and checks the result against the engine and
the data."""

from __future__ import annotations

from rectrain.config.build import BuildResult, create_recognition_training_config
from rectrain.config.checks import check_training_config
from rectrain.config.presets import PRESETS, Preset, resolve_base

__all__ = ["BuildResult", "PRESETS", "Preset", "check_training_config",
           "create_recognition_training_config", "resolve_base"]
