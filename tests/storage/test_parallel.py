"""run_parallel: every item once on a few threads; the first error stops the hand-out and is raised."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from rectrain.storage.parallel import run_parallel


def test_every_item_runs_once():
    seen = []
    lock = threading.Lock()

    def work(item: int) -> None:
        with lock:
            seen.append(item)

    run_parallel(range(500), work, workers=8)
    assert sorted(seen) == list(range(500))


def test_first_error_is_raised_and_stops_handing_out_items():
    handed = []

    def items():  # endless: only the stop ends the run
        for i in itertools.count():
            handed.append(i)
            yield i

    def work(item: int) -> None:
        if item == 20:
            raise ValueError("item 20 is bad")
        time.sleep(0.001)

    with pytest.raises(ValueError, match="item 20"):
        run_parallel(items(), work, workers=4)
    assert len(handed) < 10_000
