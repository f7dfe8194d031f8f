"""Memory stays flat as datasets grow: peak resident memory of `data pack`, `data unpack` and
`s3 push` / `s3 pull`, each in its own process, read from the kernel (``wait4``), at 2,000 and
20,000 files. The old code grew by 1.5-3.5 KB per file; the bound here is 0.3 KB per file, which
leaves room for the bounded in-memory part of the on-disk sorting (benchmarks/bench_scale.py
measures 5,000 against 100,000 and more)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

PER_FILE = 300  # bytes of peak memory per extra file, at most


# ru_maxrss of a forked child starts at its parent's size (pytest's: hundreds of MB), so a bare
# interpreter forks each command and reports what wait4 says about it
_LAUNCHER = """import os, sys
pid = os.fork()
if pid == 0:
    os.execvpe(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
sys.stderr.write("\\nPEAK_KB=%d\\n" % usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _peak_mb(argv: List[str], env: Dict[str, str]) -> float:
    proc = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER] + argv, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, _, tail = proc.stderr.rpartition("PEAK_KB=")
    assert proc.returncode == 0 and tail.strip().isdigit(), proc.stderr[-2000:]
    return int(tail) / 1024


def _tree(root: Path, count: int) -> None:
    for i in range(count):
        folder = root / f"images/{i // 1000:03d}"
        if i % 1000 == 0:
            folder.mkdir(parents=True)
        (folder / f"crop_{i:06d}.png").write_bytes(b"\x89PNG" + i.to_bytes(4, "big") * 8)


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_number_of_files(tmp_path, s3_server, s3_bucket):
    env = dict(os.environ)
    env.update(s3_server.env)
    env.pop("AWS_PROFILE", None)
    rk = [sys.executable, "-m", "rectrain"]
    peaks: Dict[int, Dict[str, float]] = {}
    for count in (2_000, 20_000):
        base = tmp_path / str(count)
        _tree(base / "data", count)
        uri = f"s3://{s3_bucket}/flat-{count}"
        steps = {
            "pack": rk + ["data", "pack", str(base / "data"), "-o", str(base / "packed"), "--no-progress"],
            "unpack": rk + ["data", "unpack", str(base / "packed"), "-o", str(base / "out"), "--no-progress"],
            "push": rk + ["s3", "push", str(base / "data"), uri, "--no-progress"],
            "pull": rk + ["s3", "pull", uri, str(base / "pulled"), "--no-progress"],
        }
        peaks[count] = {name: _peak_mb(argv, env) for name, argv in steps.items()}
        assert len(list((base / "pulled").rglob("*.png"))) == count
    for name in peaks[2_000]:
        growth = (peaks[20_000][name] - peaks[2_000][name]) * 1024 * 1024 / 18_000
        assert growth < PER_FILE, f"{name}: {growth:.0f} bytes more per file ({peaks})"
