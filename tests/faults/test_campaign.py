"""The fault campaign in CI: 20 seeded trials (tests/faults/trial.py), each a tiny real training
run through the fault proxy with faults combined at random from its seed, every invariant
checked by the oracle after every attempt. CI draws the light plans (2-3 epochs, at most one
strike: ``make_plan(light=True)``) to stay within its time; the same faults, fewer per seed.
A failing seed prints its whole story; rerun it alone with `python -m tests.faults.campaign
--light --only SEED --keep`. The 200-seed run (full plans) and its result: docs/checkpoints.md,
"The fault campaign"."""

from __future__ import annotations

import pytest

from tests.faults.trial import Trial, TrialEnv

CI_SEEDS = range(1, 21)


@pytest.mark.slow
@pytest.mark.parametrize("seed", CI_SEEDS)
def test_campaign_seed(trial_env: TrialEnv, seed: int) -> None:
    result = Trial(trial_env, seed, light=True).run()
    print(result.report())
    assert not result.violations, result.report()
    assert result.completed, result.report()
