"""CLI wiring for `rectrain sagemaker` (placeholder until its issue lands)."""

from __future__ import annotations


def register(sub) -> None:  # noqa: ANN001
    pass
