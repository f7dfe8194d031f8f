"""Shared fixtures: a real SeaweedFS S3 server on loopback (never a mock).

- ``s3_server``: one server for the whole session (``.endpoint_url``, ``.access_key``,
  ``.secret_key``, ``.env``; also a read-only identity: ``.read_only_env``, ``.client(read_only=True)``).
- ``s3_client``: a plain boto3 S3 client for it (admin identity): the tests' own checker of
  what rectrain wrote, and how they plant objects.
- ``s3``: rectrain's :class:`~rectrain.storage.service.S3Service` for it (admin identity): what
  the tests pass to rectrain's functions.
- ``s3_bucket``: a fresh, empty bucket for each test (its name), removed afterwards.
- ``s3_env``: the server's AWS_* variables set in ``os.environ`` for the test (for CLI tests).
- ``paddleocr3_python``: the Python of a separate PaddleOCR 3.x environment
  (tests/paddleocr3_env.py), created once and cached outside the repository; skipped only when
  it must be created and the package index cannot be reached.
- ``seaweed_factory``: ``seaweed_factory(data_dir=None, port=None, read_only_identity=False)``
  starts a dedicated server (for stop/restart tests); all are stopped after the test.

Every server is stopped at the end of the session, whatever happens.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional

import pytest


def _start(data_dir: Any, port: Optional[int] = None, read_only_identity: bool = True) -> Any:
    from rectrain.errors import EnvironmentProblem
    from rectrain.storage.server import SeaweedServer

    try:
        return SeaweedServer(data_dir, port=port, read_only_identity=read_only_identity).start()
    except EnvironmentProblem as exc:
        pytest.skip(f"SeaweedFS is not available: {exc}")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Any:
    server = _start(tmp_path_factory.mktemp("seaweed"))
    request.addfinalizer(server.stop)
    return server


@pytest.fixture(scope="session")
def s3_client(s3_server: Any) -> Any:
    return s3_server.client()


@pytest.fixture(scope="session")
def s3(s3_server: Any) -> Any:
    return s3_server.service()


@pytest.fixture
def s3_bucket(s3_server: Any, s3_client: Any) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    yield name
    try:
        paginator = s3_client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=name):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                s3_client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        s3_client.delete_bucket(Bucket=name)
    except Exception:  # noqa: BLE001 - the server may have been stopped by the test
        pass


@pytest.fixture
def s3_env(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> dict:
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    return dict(s3_server.env)


@pytest.fixture
def seaweed_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Any]]:
    started: List[Any] = []

    def factory(data_dir: Any = None, port: Optional[int] = None, read_only_identity: bool = False) -> Any:
        server = _start(
            data_dir or tmp_path_factory.mktemp("seaweed-own"),
            port=port,
            read_only_identity=read_only_identity,
        )
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


# Parallel runs (pytest-xdist, `-n auto --dist loadgroup` in pyproject.toml): each group runs on
# one worker. A folder whose tests share an expensive session fixture (a trained model, the
# PaddleOCR 3.x environment, the hostile world, the security base run) is one group, so the
# fixture is built once; elsewhere each file is a group (its module fixtures built once). The
# groups known to be long go first, so that no worker is left with a long one at the end.
SHARED_FIXTURE_GROUPS = {
    "model": "model", "security": "security", "hostile": "hostile",
    "docs/test_docs_deploy.py": "model",  # the PaddleOCR 3.x environment, built once
}
LONG_FIRST = ["hostile", "model", "security", "faults/test_campaign.py", "sagemaker/test_sm_local.py",
              "sagemaker/test_sm_cluster.py", "checkpoints/test_extend_dict_real.py", "e2e/test_demo.py",
              "sagemaker/test_sm_trials.py", "sagemaker/test_sm_ckpt_sync.py", "storage/test_retry.py"]


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker per core, at most 4 (each may train a model and start S3 servers)."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, 4))


def xdist_group_of(path: Path) -> str:
    rel = path.resolve().relative_to(Path(__file__).resolve().parent).as_posix()
    for prefix, group in SHARED_FIXTURE_GROUPS.items():
        if rel == prefix or rel.startswith(prefix + "/"):
            return group
    return rel


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    rank = {group: i for i, group in enumerate(LONG_FIRST)}
    groups = {}
    for item in items:
        groups[item.nodeid] = group = xdist_group_of(item.path)
        item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=lambda item: rank.get(groups[item.nodeid], len(rank)))  # stable: file order kept


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No SeaweedFS server outlives the test session."""
    import sys

    module = sys.modules.get("rectrain.storage.server")
    if module is not None:
        module.stop_all()


@pytest.fixture(scope="session")
def paddleocr3_python() -> Any:
    import paddleocr3_env

    try:
        return paddleocr3_env.ensure(log=lambda msg: print(msg, flush=True))
    except paddleocr3_env.IndexUnreachable as exc:
        pytest.skip(str(exc))
