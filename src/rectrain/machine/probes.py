"""What this machine gives a training process: the CPUs it may use and the shared memory
(``/dev/shm``) its data-loader workers hand batches over in.

Probed, not assumed: the CPUs this process may run on (``os.sched_getaffinity``, i.e.
taskset/cpuset) bounded by the cgroup CPU quota (v2 ``cpu.max``, v1
``cpu.cfs_quota_us``/``cpu.cfs_period_us``) that containers and SageMaker use;
``os.cpu_count()`` counts the host's CPUs, which a container may not have. Docker's default
``/dev/shm`` is 64 MB.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from rectrain.machine.cgroups import own_cgroups

CGROUP_ROOT = "/sys/fs/cgroup"
SHM_PATH = "/dev/shm"


@dataclass
class CpuProbe:
    """What this process may use: ``usable`` CPUs and where the figure came from."""

    affinity: int
    quota: Optional[float]  # CPUs the cgroup quota allows (None: no quota)
    host: int
    usable: int
    why: str

    def as_dict(self) -> Dict[str, Any]:
        return {"affinity": self.affinity, "quota": self.quota, "host": self.host,
                "usable": self.usable, "why": self.why}


def _cgroup_dirs(cgroup_root: Path, proc_cgroup: Path) -> List[Tuple[str, Path]]:
    """(version, folder) pairs to read the quota from: this process's own cgroup and its
    ancestors (the tightest quota wins), for v2 and for v1's cpu controller."""
    out: List[Tuple[str, Path]] = []
    for controllers, rel in own_cgroups(proc_cgroup):
        if not controllers:
            base, version = cgroup_root, "v2"
        elif "cpu" in controllers:
            name = ",".join(controllers)
            base = cgroup_root / name if (cgroup_root / name).is_dir() else cgroup_root / "cpu"
            version = "v1"
        else:
            continue
        node = base / rel if rel else base
        while True:
            out.append((version, node))
            if node == base:
                break
            node = node.parent
    out += [("v2", cgroup_root), ("v1", cgroup_root / "cpu")]
    return out


def cgroup_cpu_quota(cgroup_root: Union[str, Path] = CGROUP_ROOT,
                     proc_cgroup: Union[str, Path] = "/proc/self/cgroup") -> Optional[float]:
    """CPUs the cgroup CPU quota allows this process (e.g. 1.5), or None without a quota."""
    quotas: List[float] = []
    for version, node in _cgroup_dirs(Path(cgroup_root), Path(proc_cgroup)):
        try:
            if version == "v2":
                text = (node / "cpu.max").read_text().split()
                if text and text[0] != "max":
                    quotas.append(int(text[0]) / int(text[1] if len(text) > 1 else 100000))
            else:
                quota = int((node / "cpu.cfs_quota_us").read_text().strip())
                period = int((node / "cpu.cfs_period_us").read_text().strip())
                if quota > 0 and period > 0:
                    quotas.append(quota / period)
        except (OSError, ValueError, IndexError):
            continue
    return min(quotas) if quotas else None


def probe_cpus(cgroup_root: Union[str, Path] = CGROUP_ROOT,
               proc_cgroup: Union[str, Path] = "/proc/self/cgroup") -> CpuProbe:
    host = os.cpu_count() or 1
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        affinity = host
    quota = cgroup_cpu_quota(cgroup_root, proc_cgroup)
    usable = affinity
    why = f"{affinity} CPU(s) in this process's affinity mask"
    if quota is not None and math.floor(quota) < usable:
        usable = max(1, math.floor(quota))
        why = f"cgroup CPU quota {quota:g} CPU(s) (affinity {affinity}, host {host})"
    elif affinity < host:
        why += f" (host has {host})"
    return CpuProbe(affinity, quota, host, usable, why)


@dataclass
class ShmProbe:
    path: str
    total: int
    free: int

    def as_dict(self) -> Dict[str, Any]:
        return {"path": self.path, "total": self.total, "free": self.free}


def probe_shm(path: Union[str, Path] = SHM_PATH) -> Optional[ShmProbe]:
    """Size and free space of the shared-memory filesystem (None when it does not exist)."""
    try:
        st = os.statvfs(str(path))
    except OSError:
        return None
    return ShmProbe(str(path), st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize)
