"""Table-driven hostile cases: each runs the real ``rectrain`` command in a subprocess, in a
scratch folder, and checks the exit code, that the message names what it must (file, line,
field, fix), that nothing printed a traceback, and that no file changed except the declared
outputs (SHA-256 of every file before and after)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Case:
    id: str
    argv: Sequence[str]  # after `rectrain`; "{tmp}" is replaced by the scratch folder
    setup: Callable[[Path], None]
    code: int
    says: Tuple[str, ...] = ()  # substrings the output must contain (case-insensitive)
    cwd: str = "."  # relative to the scratch folder
    may_change: Tuple[str, ...] = ()  # paths (relative, or prefixes ending with "/") allowed to change
    env: Dict[str, str] = field(default_factory=dict)
    timeout: float = 180.0


def snapshot(root: Path) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            if p.is_symlink():
                out[str(p.relative_to(root))] = "link:" + os.readlink(p)
                continue
            try:
                out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
            except OSError:
                out[str(p.relative_to(root))] = "unreadable"
    return out


def _allowed(path: str, may_change: Sequence[str]) -> bool:
    return any(path == m or (m.endswith("/") and path.startswith(m)) for m in may_change)


def run_case(case: Case, tmp: Path, python: Optional[str] = None) -> subprocess.CompletedProcess:
    case.setup(tmp)
    before = snapshot(tmp)
    env = dict(os.environ)
    env.pop("AWS_ENDPOINT_URL", None)
    env.update({"PYTHONPATH": str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", ""),
                "NO_COLOR": "1", "COLUMNS": "200", "AWS_EC2_METADATA_DISABLED": "true"})
    env.update({k: v.replace("{tmp}", str(tmp)) for k, v in case.env.items()})
    argv = [a.replace("{tmp}", str(tmp)) for a in case.argv]
    proc = subprocess.run([python or sys.executable, "-m", "rectrain", *argv], cwd=str(tmp / case.cwd),
                          env=env, capture_output=True, text=True, timeout=case.timeout,
                          stdin=subprocess.DEVNULL)
    after = snapshot(tmp)
    output = proc.stdout + proc.stderr
    where = f"[{case.id}] rectrain {' '.join(argv)}\n--- output ---\n{output[-3000:]}"
    assert "Traceback (most recent call last)" not in output, where
    assert proc.returncode == case.code, f"exit {proc.returncode}, expected {case.code}\n{where}"
    low = output.lower()
    for s in case.says:
        assert s.lower().replace("{tmp}", str(tmp).lower()) in low, f"output lacks {s!r}\n{where}"
    lost = sorted(p for p in before if p not in after and not _allowed(p, case.may_change))
    changed = sorted(p for p in before if p in after and before[p] != after[p]
                     and not _allowed(p, case.may_change))
    assert not lost, f"files lost: {lost}\n{where}"
    assert not changed, f"files changed: {changed}\n{where}"
    return proc
