"""Fixtures of the fault campaign.

- ``fault_proxy``: a :class:`~tests.faults.proxy.FaultProxy` in front of the session's SeaweedFS
  (off until a test sets ``fault_proxy.plan``); stopped after the test.
- ``tiny_configs``: ``tiny_configs(epochs)``, a tiny CRNN config (tests/training/tinydata.py)
  for that many epochs, 4 steps each, made once per session.
- ``mount_allowed``: whether this process may mount (tmpfs, bind mounts; CI runs as root).
- ``trial_env``: what :class:`~tests.faults.trial.Trial` needs (skips without the engine).
- ``checker``: the oracle (plain boto3) on the session's server.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.faults import blackbox, mounts
from tests.faults.oracle import Checker
from tests.faults.proxy import FaultProxy
from tests.faults.trial import TrialEnv


def _can_mount(root: Path) -> bool:
    try:
        with mounts.tmpfs(root / "probe", 1024 * 1024):
            return True
    except mounts.MountUnavailable:
        return False


@pytest.fixture(scope="session")
def mount_allowed(tmp_path_factory: pytest.TempPathFactory) -> bool:
    return _can_mount(tmp_path_factory.mktemp("mount-probe"))


@pytest.fixture
def fault_proxy(s3_server: Any, request: pytest.FixtureRequest) -> Iterator[FaultProxy]:
    seed = zlib.crc32(request.node.nodeid.encode())
    proxy = FaultProxy(s3_server.endpoint_url, seed=seed).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def tiny_configs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Path]:
    return blackbox.tiny_configs(tmp_path_factory.mktemp("fault-data"))


@pytest.fixture(scope="session")
def engine_available() -> None:
    from rectrain.engine import find_engine
    from rectrain.errors import EnvironmentProblem

    try:
        find_engine()
    except EnvironmentProblem as exc:
        pytest.skip(f"no PaddleOCR engine: {exc}")


@pytest.fixture
def checker(s3_client: Any) -> Checker:
    return Checker(s3_client)


@pytest.fixture
def trial_env(engine_available: None, s3_server: Any, s3_client: Any, s3_bucket: str,
              fault_proxy: FaultProxy, tiny_configs: Callable[[int], Path], tmp_path: Path,
              mount_allowed: bool) -> TrialEnv:
    return TrialEnv(s3_env=dict(s3_server.env), client=s3_client, proxy=fault_proxy, bucket=s3_bucket,
                    workdir=tmp_path, config_for=tiny_configs, can_mount=mount_allowed)
