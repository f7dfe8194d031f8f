"""SageMaker test fixtures: two emulated hosts in real Linux network namespaces."""

from __future__ import annotations

from typing import Any, Iterator

import pytest


@pytest.fixture
def host_network() -> Iterator[Any]:
    """``algo-1`` and ``algo-2`` in two network namespaces joined by a veth pair; removed at
    teardown, also when the test fails. Skips (saying why) where namespaces cannot be made."""
    from rectrain.emulator.netns import HostNetwork, unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(f"network namespaces unavailable: {reason}")
    net = HostNetwork(["algo-1", "algo-2"])
    try:
        net.create()
        yield net
    finally:
        net.close()


@pytest.fixture
def host_network_available() -> None:
    """Skips (saying why) where run-local cannot make network namespaces."""
    from rectrain.emulator.netns import unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(f"network namespaces unavailable: {reason}")
