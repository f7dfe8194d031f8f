"""The S3 and scale benchmarks still run on the current code (tiny sizes: a smoke test, no
timing asserted). Their figures are in docs/performance.md."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(argv: list, tmp_path: Path) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src")] + [p for p in [env.get("PYTHONPATH")] if p])
    proc = subprocess.run([sys.executable, *argv], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_bench_s3_runs_and_checks_every_download(tmp_path: Path) -> None:
    out = _run([str(ROOT / "benchmarks/bench_s3.py"), "--files", "150", "--size", "800", "--rounds", "2",
                "--tools", "rectrain,rectrain-no-fastpath,packed", "--work-dir", str(tmp_path / "w")],
               tmp_path)
    for label in ("rectrain per-file", "rectrain no-fastpath", "rectrain packed"):
        assert label in out and "files/s" in out
    assert re.search(r"^rectrain per-file +2 ", out, re.MULTILINE)  # both rounds: best and median


def test_bench_scale_runs_at_two_scales(tmp_path: Path) -> None:
    out = _run([str(ROOT / "benchmarks/bench_scale.py"), "--scales", "200,400", "--no-s3",
                "--work-dir", str(tmp_path / "w")], tmp_path)
    assert "peak memory at 400 files / at 200 files" in out
    assert "unpack vs tar -x at 400 files" in out
