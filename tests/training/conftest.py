"""Fixtures for the training tests: a tiny PIL-drawn dataset and small CRNN configs, run by
the real engine on the CPU (a few seconds each)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from .tinydata import make_dataset, tiny_config


@pytest.fixture(scope="session")
def engine() -> Any:
    from rectrain.engine import find_engine
    from rectrain.errors import EnvironmentProblem

    try:
        return find_engine()
    except EnvironmentProblem as exc:
        pytest.skip(f"no PaddleOCR engine: {exc}")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return make_dataset(tmp_path_factory.mktemp("tinydata"))


@pytest.fixture
def make_config(tiny_data: dict, tmp_path: Path) -> Callable[..., Path]:
    def factory(name: str = "cfg.yml", **kwargs: Any) -> Path:
        return tiny_config(tiny_data, tmp_path / "configs" / name, **kwargs)

    return factory
