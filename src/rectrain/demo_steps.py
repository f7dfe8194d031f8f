"""The demo trains a fixed number of steps, so its result does not depend on machine load.

A time budget made the same command read 91% of the held-out words on a quiet machine and 46%
on a busy one: the busy machine simply did fewer steps. Now the run is a fixed number of whole
epochs (the step count rounded up to whole epochs, so the last step is also an evaluation and a
checkpoint), the learning-rate schedule is planned for three times that many epochs (a Cosine
decayed to zero within ten CPU minutes stalls the CTC model, docs/problem-log.md 2026-11-25),
and the runner stops after the checkpoint of the last planned step. ``--minutes`` is only a cap:
when it cuts training short the demo says so, and the result is not the README's figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from rectrain.errors import UserError


@dataclass(frozen=True)
class StepSchedule:
    steps_per_epoch: int
    epochs: int  # epochs actually trained
    steps: int  # = epochs * steps_per_epoch
    schedule_epochs: int  # Global.epoch_num: the learning-rate horizon

    def estimate_s(self, seconds_per_step: float) -> float:
        return self.steps * seconds_per_step


def step_schedule(train_images: int, batch_size: int, steps: int, *, drop_last: bool = True,
                  horizon: int = 3) -> StepSchedule:
    """Whole epochs covering at least ``steps`` steps of ``batch_size`` (one card)."""
    if steps < 1:
        raise UserError(f"--steps {steps}: must be at least 1.", "pass e.g. --steps 900.")
    spe = train_images // batch_size if drop_last else math.ceil(train_images / batch_size)
    if spe < 1:
        raise UserError(f"{train_images} training images give no step of batch {batch_size}.",
                        "use more images or a smaller batch.")
    epochs = math.ceil(steps / spe)
    return StepSchedule(steps_per_epoch=spe, epochs=epochs, steps=epochs * spe,
                        schedule_epochs=horizon * epochs)


def estimate_line(schedule: StepSchedule, seconds_per_step: float, cap_minutes: Optional[float]) -> str:
    seconds = schedule.estimate_s(seconds_per_step)
    took = f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
    text = (f"training {schedule.steps} steps ({schedule.epochs} epochs of "
            f"{schedule.steps_per_epoch}): about {took} on 2 idle CPU cores "
            f"({seconds_per_step:g} s/step measured); a busy machine takes longer but reaches the "
            "same step, so the same accuracy")
    if cap_minutes is not None:
        text += f"; --minutes {cap_minutes:g} caps the whole demo and may cut training short"
    return text


def cut_short_line(done: int, schedule: StepSchedule, cap_minutes: Optional[float]) -> Optional[str]:
    if done >= schedule.steps:
        return None
    return (f"--minutes {cap_minutes:g} cut training short at step {done} of {schedule.steps}: "
            "the accuracy below is not comparable with the README's figure. Fix: rerun without "
            "--minutes (or with --resume to finish these steps).")
