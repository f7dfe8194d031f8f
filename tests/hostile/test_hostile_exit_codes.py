"""Exit codes by cause: the user's paths are user errors (2) naming the path and the fix;
SIGTERM and SIGINT give the one code errors.py documents (75)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rectrain.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR
from tests.hostile import datasets as ds
from tests.hostile.harness import REPO, Case, run_case


def _file_in_the_way(tmp: Path) -> None:
    ds.dataset(tmp)
    (tmp / "out").write_text("a file, not a folder\n", encoding="utf-8")
    (tmp / "words.txt").write_text("สวัสดี\nไทย\n", encoding="utf-8")


CASES = [
    Case("dict-out-under-a-file", ["data", "dict", "labels.txt", "-o", "out/dict.txt"], _file_in_the_way,
         EXIT_USER_ERROR, ("out is a file", "Fix:")),
    Case("split-out-is-a-file", ["data", "split", "labels.txt", "-o", "out"], _file_in_the_way,
         EXIT_USER_ERROR, ("out", "Fix:")),
    Case("synth-out-is-a-file", ["data", "synth", "--words", "words.txt", "-n", "2", "-o", "out"],
         _file_in_the_way, EXIT_USER_ERROR, ("out", "Fix:")),
    Case("labels-missing", ["data", "validate", "nope.txt"], ds.dataset, EXIT_USER_ERROR,
         ("nope.txt", "Fix:")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_exit_codes(case: Case, tmp_path: Path) -> None:
    run_case(case, tmp_path)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_gives_the_documented_code(sig: int, tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("สวัสดี\nไทย\nบ้าน\n", encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "rectrain", "data", "synth", "--words", str(words),
                             "-n", "200000", "--workers", "1", "-o", str(tmp_path / "synth")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    images = tmp_path / "synth" / "images"
    while time.monotonic() < deadline and not (images.is_dir() and any(images.iterdir())):
        time.sleep(0.2)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_INTERRUPTED, out[-2000:]
    assert "Traceback" not in out and "interrupted" in out.lower()
