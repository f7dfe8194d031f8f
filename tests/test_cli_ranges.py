"""Every numeric option of every command has a range (``rectrain.cli.ranges``): the parser is
walked and an option typed plain ``int`` or ``float`` fails this test the day it is added; a
value outside the range is refused while the command line is read (exit 2, option named, fix)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Dict

import pytest

from rectrain.cli import ranges
from tests.cli_actions import every_action


def numeric_options() -> Dict[str, argparse.Action]:
    return {" ".join(path + tuple((action.option_strings or [action.dest])[:1])): action
            for path, action in every_action() if action.type is not None}


def test_no_numeric_option_without_a_range() -> None:
    plain = sorted(k for k, a in numeric_options().items() if a.type in (int, float))
    assert plain == [], f"numeric options without a range (use rectrain.cli.ranges): {plain}"


def test_the_ranges_refuse_what_they_are_for() -> None:
    for bad in ("0", "-1", "nan", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match="Fix:"):
            ranges.count(1)(bad)
    for bad in ("0", "-0.5", "nan", "inf"):
        with pytest.raises(argparse.ArgumentTypeError, match="Fix:"):
            ranges.positive()(bad)
    assert ranges.count(1)("3") == 3 and ranges.positive()("0.5") == 0.5
    assert ranges.WORKERS_OR_AUTO("auto") == "auto" and ranges.WORKERS_OR_AUTO("0") == 0
    with pytest.raises(argparse.ArgumentTypeError):
        ranges.FRACTION("1")
    with pytest.raises(argparse.ArgumentTypeError):
        ranges.PORT("70000")


def test_an_out_of_range_value_exits_2_naming_the_option() -> None:
    proc = subprocess.run([sys.executable, "-m", "rectrain", "train", "--config", "c.yml", "--run-dir", "r",
                           "--max-steps", "0"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "--max-steps" in proc.stderr and "Fix:" in proc.stderr and "Traceback" not in proc.stderr
