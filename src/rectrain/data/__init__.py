"""Dataset toolkit: dictionaries, label files, validation, splits, conversion, synthetic data."""

from __future__ import annotations
