"""Fixtures for the tracking tests: a real MLflow server (session), and the training tests'
tiny dataset and configs (the real engine on the CPU)."""

from __future__ import annotations

from typing import Iterator

import pytest
from training.conftest import engine, make_config, tiny_data  # noqa: F401 - fixtures

from .mlflow_server import MlflowServer


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    pytest.importorskip("mlflow", reason="mlflow is not installed (pip install -r requirements.txt)")
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    try:
        server.start()
        yield server
    finally:
        server.stop()
