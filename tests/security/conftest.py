"""Fixtures for the security tests: one real tiny training run per session whose checkpoint
prefix (every object, in memory) is copied into each test's own bucket and tampered with there;
the CLI's environment; a real MLflow server.

The base run is ``rectrain train`` on the CPU (the real engine, 4 steps, ~15 s) with
``--checkpoint-s3``: its S3 prefix holds what a real run leaves (run-state.json, metrics,
snapshot folders with markers, pointers), so a planted file sits among real ones.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict

import pytest

from tests.security.gadgets import (
    BASE_PREFIX,
    BaseRun,
    Objects,
    bucket_objects,
    cli_env,
    rectrain,
    shown,
    upload,
)
from tests.tracking.conftest import mlflow_server  # noqa: F401 - fixture (a real MLflow server)
from tests.training.conftest import engine  # noqa: F401 - fixture (skips without an engine)
from tests.training.tinydata import make_dataset, tiny_config


@pytest.fixture
def env(s3_server: Any) -> Dict[str, str]:
    """The environment of a ``rectrain`` subprocess that talks to the session's S3 server."""
    return cli_env(s3_server.env)


@pytest.fixture(scope="session")
def base_run(tmp_path_factory: pytest.TempPathFactory, s3_server: Any,
             request: pytest.FixtureRequest) -> BaseRun:
    import json

    request.getfixturevalue("engine")  # skips without a PaddleOCR engine
    root = tmp_path_factory.mktemp("security-base")
    data = make_dataset(root / "data")
    config = tiny_config(data, root / "cfg" / "tiny.yml", epochs=1)
    client = s3_server.client()
    bucket = f"secbase-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    proc = rectrain(["train", "--config", config, "--run-dir", root / "run", "--device", "cpu",
                     "--sub-epochs", "1", "--checkpoint-s3", f"s3://{bucket}/{BASE_PREFIX}",
                     "--display", "plain", "--no-tensorboard"], cli_env(s3_server.env))
    assert proc.returncode == 0, shown(proc)
    objects = bucket_objects(client, bucket)
    assert f"{BASE_PREFIX}/latest.json" in objects, sorted(objects)
    run_id = json.loads(objects[f"{BASE_PREFIX}/run-state.json"])["run_id"]
    return BaseRun(config=config, data=data, run_dir=root / "run", objects=objects, run_id=run_id)


@pytest.fixture
def prefix_of(s3_client: Any, s3_bucket: str) -> Any:
    """``prefix_of(objects)`` puts ``objects`` into this test's bucket; returns the s3:// prefix
    of the run (:data:`BASE_PREFIX`)."""

    def put(objects: Objects) -> str:
        upload(s3_client, s3_bucket, objects)
        return f"s3://{s3_bucket}/{BASE_PREFIX}"

    return put
