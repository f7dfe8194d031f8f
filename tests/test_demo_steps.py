"""The demo's fixed step count (the real demo run is tests/e2e/test_demo.py)."""

from __future__ import annotations

import pytest

from rectrain.demo import DemoPlan
from rectrain.demo_steps import cut_short_line, estimate_line, step_schedule
from rectrain.errors import UserError


def test_default_plan_is_whole_epochs_with_a_three_times_longer_lr_horizon():
    plan = DemoPlan()
    s = step_schedule(plan.train_images, plan.batch_size, plan.train_steps)
    # 3000 images, batch 32, drop_last: 93 steps per epoch; 900 steps -> 10 epochs = 930
    assert (s.steps_per_epoch, s.epochs, s.steps, s.schedule_epochs) == (93, 10, 930, 30)
    line = estimate_line(s, plan.seconds_per_step, None)
    assert "930 steps" in line and "about 8 min" in line and "--minutes" not in line
    assert "about 6 s" in estimate_line(step_schedule(96, 16, 10), 0.5, None)
    assert "cut training short" in estimate_line(s, plan.seconds_per_step, 5)


def test_step_count_does_not_depend_on_anything_but_the_plan():
    assert step_schedule(96, 16, 10).steps == 12
    assert step_schedule(96, 16, 12).steps == 12
    assert step_schedule(100, 16, 10, drop_last=False).steps_per_epoch == 7
    with pytest.raises(UserError):
        step_schedule(8, 16, 10)
    with pytest.raises(UserError):
        step_schedule(96, 16, 0)


def test_a_cap_that_cuts_training_short_says_so():
    s = step_schedule(96, 16, 12)
    assert cut_short_line(12, s, 3.0) is None
    msg = cut_short_line(7, s, 3.0)
    assert msg is not None and "step 7 of 12" in msg and "--minutes 3" in msg


def test_cli_minutes_is_optional(capsys):
    from rectrain.cli.main import main

    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = capsys.readouterr().out
    assert "--steps" in out and "optional cap" in out
