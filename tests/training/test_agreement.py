"""Hosts agree on the resume step before the engine starts (issue 22): the same step on every
host lets them start; different steps stop every host with an error naming each host's step,
in seconds, never a hang; a host that never reports is an error within the time bound."""

from __future__ import annotations

import socket
import threading
import time
from typing import Dict, List

import pytest

from rectrain.errors import EnvironmentProblem
from rectrain.training.agreement import StepsDisagree, agree_on_resume_step


def _master() -> str:
    with socket.socket() as sock:  # a free port pair: the agreement uses port + 1
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1] - 1}"


def _hosts(steps: List[int], timeout: float = 20.0) -> Dict[int, BaseException]:
    master, errors = _master(), {}

    def host(rank: int) -> None:
        try:
            agree_on_resume_step(master, rank, len(steps), steps[rank], timeout_s=timeout)
        except BaseException as exc:  # noqa: BLE001 - what each host ended with
            errors[rank] = exc

    threads = [threading.Thread(target=host, args=(rank,)) for rank in reversed(range(len(steps)))]
    for t in threads:
        t.start()
        time.sleep(0.2)  # the other hosts first: they wait for the first one
    for t in threads:
        t.join(timeout + 10)
    assert not any(t.is_alive() for t in threads), "a host hangs"
    return errors


def test_the_same_step_everywhere_starts() -> None:
    assert _hosts([14, 14, 14]) == {}


def test_different_steps_stop_every_host_naming_both() -> None:
    errors = _hosts([14, 16])
    assert set(errors) == {0, 1}
    for exc in errors.values():
        assert isinstance(exc, StepsDisagree) and exc.exit_code == 2
        assert "host 0 step 14" in str(exc) and "host 1 step 16" in str(exc)


def test_a_host_that_never_reports_is_an_error_in_bounded_time() -> None:
    started = time.monotonic()
    with pytest.raises(EnvironmentProblem, match=r"host\(s\) \[1\]"):
        agree_on_resume_step(_master(), 0, 2, 5, timeout_s=2.0)
    assert time.monotonic() - started < 10
