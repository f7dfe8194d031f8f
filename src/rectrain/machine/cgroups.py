"""This process's control groups, read from ``/proc/self/cgroup``: what the CPU-quota probe
(workers.py) and the OOM-kill counter (failures.py) both start from."""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple, Union

PROC_CGROUP = "/proc/self/cgroup"


def own_cgroups(proc_cgroup: Union[str, Path] = PROC_CGROUP) -> List[Tuple[List[str], str]]:
    """``(controllers, path relative to the hierarchy's root)`` per line of ``proc_cgroup``;
    cgroup v2's unified hierarchy has no controllers (``[]``). Empty when unreadable."""
    try:
        lines = Path(proc_cgroup).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out: List[Tuple[List[str], str]] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        controllers = [c for c in parts[1].split(",") if c]
        out.append((controllers, parts[2].strip().lstrip("/")))
    return out
