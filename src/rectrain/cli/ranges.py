"""The range of every numeric option, as argparse types: a value outside it is refused while
the command line is read (exit 2, the option named, the fix given), before any work.

``tests/test_cli_ranges.py`` walks the parser and fails on a numeric option without one of
these types, so a new option gets a range the day it is added.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable, Optional, Union

Number = Union[int, float]


class Ranged:
    """An argparse ``type``: ``kind`` (int or float), finite, within [``low``, ``high``]
    (``low_open``: strictly above ``low``); ``also``: words accepted as they are ("auto")."""

    def __init__(self, kind: Callable[[str], Number], low: Optional[Number] = None,
                 high: Optional[Number] = None, *, low_open: bool = False, high_open: bool = False,
                 also: tuple = (), example: str = "") -> None:
        self.kind, self.low, self.high, self.low_open, self.also = kind, low, high, low_open, also
        self.high_open = high_open
        self.example = example
        self.__name__ = "number" if kind is float else "whole number"

    def rule(self) -> str:
        kind = "a number" if self.kind is float else "a whole number"
        parts = []
        if self.low is not None:
            parts.append(f"{'above' if self.low_open else 'at least'} {self.low}")
        if self.high is not None:
            parts.append(f"{'below' if self.high_open else 'at most'} {self.high}")
        words = f" or {' / '.join(self.also)}" if self.also else ""
        return f"{kind} {' and '.join(parts)}".strip() + words

    def __call__(self, text: str) -> Union[Number, str]:
        if text.strip().lower() in self.also:
            return text.strip().lower()
        try:
            value = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {self.rule()}. Fix: pass {self._example()}.") \
                from None
        bad = isinstance(value, float) and not math.isfinite(value)
        if self.low is not None:
            bad = bad or value < self.low or (self.low_open and value == self.low)
        if self.high is not None:
            bad = bad or value > self.high or (self.high_open and value == self.high)
        if bad:
            raise argparse.ArgumentTypeError(f"{text} is out of range: it must be {self.rule()}. "
                                             f"Fix: pass {self._example()}.")
        return value

    def _example(self) -> str:
        if self.example:
            return self.example
        if self.low is None:
            return "a value in range"
        low = self.low + (1 if self.low_open and self.kind is int else 0)
        return f"e.g. {low if not self.low_open or self.kind is int else self.low + 1}"


def count(minimum: int = 1, maximum: Optional[int] = None, **kw: object) -> Ranged:
    """A whole number, at least ``minimum`` (steps, workers, samples, jobs)."""
    return Ranged(int, minimum, maximum, **kw)  # type: ignore[arg-type]


def positive(**kw: object) -> Ranged:
    """A finite number above 0 (minutes, seconds, a learning rate)."""
    return Ranged(float, 0, None, low_open=True, **kw)  # type: ignore[arg-type]


SEED = count(0)
FRACTION = Ranged(float, 0, 1, low_open=True, high_open=True,
                  example="a fraction above 0 and below 1, e.g. --val 0.1")
SHARE = Ranged(float, 0, 1, example="a share from 0 to 1, e.g. --lines 0.2")
PORT = count(1, 65535, example="a port from 1 to 65535, e.g. --port 8333")
WORKERS = count(1)
WORKERS_OR_AUTO = count(0, also=("auto",), example="a number of loader processes (0: in the main "
                                                   "process) or auto")
