"""The fault campaign in CI: 20 seeded trials (tests/faults/trial.py), each a tiny real training
run through the fault proxy with faults combined at random from its seed, every invariant
checked by the oracle after every attempt. CI draws the light plans (2-3 epochs, at most one
strike: ``make_plan(light=True)``), the same faults, fewer per seed, and runs two seeds at a
time (each with its own proxy). A failing seed prints its whole story; rerun it alone with
`python -m tests.faults.campaign --light --only SEED --keep`. The 200-seed run (full plans)
and its result: docs/checkpoints.md, "The fault campaign"."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Dict

import pytest

from tests.faults.proxy import FaultProxy
from tests.faults.trial import Trial, TrialEnv, TrialResult

CI_SEEDS = range(1, 21)
PAIRS = [(a, a + 1) for a in CI_SEEDS[::2]]  # two trials at a time, each with its own proxy


@pytest.mark.slow
@pytest.mark.parametrize("seeds", PAIRS, ids=lambda pair: f"{pair[0]}+{pair[1]}")
def test_campaign_seeds(trial_env: TrialEnv, s3_server: Any, seeds: tuple) -> None:
    """Two seeds side by side (CI's two cores: one trial's process start overlaps the other's
    training); each its own proxy, prefix, folders and tmpfs, so neither sees the other's faults."""
    second = FaultProxy(s3_server.endpoint_url, seed=seeds[1]).start()
    envs = [trial_env, dataclasses.replace(trial_env, proxy=second, workdir=trial_env.workdir / "b")]
    results: Dict[int, TrialResult] = {}
    errors: Dict[int, BaseException] = {}

    def run(seed: int, env: TrialEnv) -> None:
        try:
            results[seed] = Trial(env, seed, light=True).run()
        except BaseException as exc:  # noqa: BLE001 - re-raised below, with the other's story
            errors[seed] = exc

    threads = [threading.Thread(target=run, args=(seed, env)) for seed, env in zip(seeds, envs)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        second.stop()
    for seed, exc in errors.items():
        raise AssertionError(f"seed {seed}: the harness failed") from exc
    for seed in seeds:
        print(results[seed].report())
    problems = [results[s].report() for s in seeds if results[s].violations or not results[s].completed]
    assert not problems, "\n".join(problems)
