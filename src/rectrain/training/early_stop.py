"""``train --early-stop N``: stop after N evaluations in a row without a new best.

The engine saves ``best_accuracy`` at every evaluation that improves the main metric (and
``rectrain train`` keeps ``best_of_run``), so stopping later loses nothing: the best model is
the one exported by default. "Better" is the engine's own rule (``cur >= best`` for the main
indicator, ``tools/program.py``); an evaluation that only ties the best does not reset the count
here, so a plateau ends the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

from rectrain.errors import UserError


@dataclass
class EarlyStop:
    patience: int
    indicator: str = "acc"
    best: Optional[float] = None  # the best so far (a resumed run passes its own)
    since_best: int = 0
    evaluations: int = 0

    def __post_init__(self) -> None:
        if self.patience < 1:
            raise UserError(f"--early-stop {self.patience}: must be at least 1 evaluation.",
                            "pass e.g. --early-stop 5 (or leave it out to train every epoch).")

    def feed(self, record: Dict[str, Any]) -> bool:
        """Feed a metrics record; True when training should stop now."""
        if record.get("type") != "eval":
            return False
        value = record.get(self.indicator)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return False
        self.evaluations += 1
        if self.best is None or value > self.best:
            self.best = float(value)
            self.since_best = 0
            return False
        self.since_best += 1
        return self.since_best >= self.patience

    def message(self) -> str:
        return (f"--early-stop {self.patience}: {self.since_best} evaluations without a better "
                f"{self.indicator} than {self.best:g}; stopping. The best model is kept "
                "(best_accuracy / best_of_run).")
