"""CLI wiring for `rectrain monitor` (placeholder until its issue lands)."""

from __future__ import annotations


def register(sub) -> None:  # noqa: ANN001
    pass
