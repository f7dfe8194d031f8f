"""Data-loader workers sized for the machine, and the ``/dev/shm`` check.

The engine's loader settings are ``Train.loader.num_workers`` / ``Eval.loader.num_workers`` and
``<Mode>.loader.use_shared_memory`` (``ppocr/data/__init__.py`` ``build_dataloader``: absent
means ``True``; the workers then hand batches over in ``/dev/shm``). Docker's default
``/dev/shm`` is 64 MB, and a worker that cannot map its batch dies with a bus error
(PaddleOCR #9391, #6530).

What the machine gives is probed, not assumed: the CPUs this process may run on
(``os.sched_getaffinity``, i.e. taskset/cpuset) bounded by the cgroup CPU quota (v2
``cpu.max``, v1 ``cpu.cfs_quota_us``/``cpu.cfs_period_us``) that containers and SageMaker use;
``os.cpu_count()`` counts the host's CPUs, which a container may not have.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from rectrain.errors import ConfigError
from rectrain.logs import get_logger
from rectrain.machine.cgroups import own_cgroups

log = get_logger("training.workers")

CGROUP_ROOT = "/sys/fs/cgroup"
SHM_PATH = "/dev/shm"
MAX_WORKERS_PER_GPU = 16  # beyond this the main process's collation is the limit
SHM_SAFETY = 2.0  # room for batches in flight besides the prefetched ones


@dataclass(frozen=True)
class Instance:
    name: str
    vcpus: int
    memory_gib: int
    gpus: int
    gpu: str


# SageMaker GPU training instances (vCPUs and memory as AWS publishes them for the instance
# family; SageMaker runs one training container per instance with all of them).
INSTANCES: List[Instance] = [
    Instance("ml.g4dn.xlarge", 4, 16, 1, "T4"),
    Instance("ml.g4dn.2xlarge", 8, 32, 1, "T4"),
    Instance("ml.g4dn.12xlarge", 48, 192, 4, "T4"),
    Instance("ml.g5.xlarge", 4, 16, 1, "A10G"),
    Instance("ml.g5.2xlarge", 8, 32, 1, "A10G"),
    Instance("ml.g5.4xlarge", 16, 64, 1, "A10G"),
    Instance("ml.g5.12xlarge", 48, 192, 4, "A10G"),
    Instance("ml.g6.xlarge", 4, 16, 1, "L4"),
    Instance("ml.g6.2xlarge", 8, 32, 1, "L4"),
    Instance("ml.g6e.xlarge", 4, 32, 1, "L40S"),
    Instance("ml.p3.2xlarge", 8, 61, 1, "V100"),
    Instance("ml.p3.8xlarge", 32, 244, 4, "V100"),
    Instance("ml.p4d.24xlarge", 96, 1152, 8, "A100"),
]


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


def _input_shape(cfg: Mapping[str, Any], mode: str) -> Tuple[int, int, int]:
    """Largest C, H, W a sample of ``mode`` is resized to (multi-scale: the largest scale)."""
    c, h, w = 3, 48, 320
    found = False
    transforms = ((cfg.get(mode) or {}).get("dataset") or {}).get("transforms") or []
    for op in transforms:
        if not isinstance(op, dict):
            continue
        for params in op.values():
            if isinstance(params, dict) and isinstance(params.get("image_shape"), (list, tuple)):
                shape = [int(x) for x in params["image_shape"]]
                if len(shape) == 3 and shape[0] in (1, 3):  # CHW (RecConAug's is HWC)
                    c, h, w = shape
                    found = True
    scales = ((cfg.get(mode) or {}).get("sampler") or {}).get("scales")
    if isinstance(scales, (list, tuple)) and scales:
        try:
            h = max(int(s[1]) for s in scales)
            w = max(int(s[0]) for s in scales)
            found = True
        except (TypeError, ValueError, IndexError):
            pass
    if not found:
        d2s = (cfg.get("Global") or {}).get("d2s_train_image_shape")
        if isinstance(d2s, (list, tuple)) and len(d2s) == 3:
            c, h, w = (int(x) for x in d2s)
    return c, h, w


def max_input_height(cfg: Mapping[str, Any]) -> int:
    """The largest input height the training data is resized to (multi-scale: its largest)."""
    return _input_shape(cfg, "Train")[1]


def batch_bytes(cfg: Mapping[str, Any], mode: str = "Train") -> int:
    """Bytes of one float32 image batch of ``mode`` (labels are small beside it)."""
    c, h, w = _input_shape(cfg, mode)
    bs = int(((cfg.get(mode) or {}).get("loader") or {}).get("batch_size_per_card") or 1)
    return bs * c * h * w * 4


def shm_needed(cfg: Mapping[str, Any], workers: int, mode: str = "Train") -> int:
    """Shared memory the loader's workers can hold at once: each prefetches two batches
    (Paddle's ``prefetch_factor``), with room for the ones being handed over."""
    return int(max(workers, 1) * 2 * batch_bytes(cfg, mode) * SHM_SAFETY)


def auto_workers(cpus: int, gpus: int = 1) -> int:
    """Workers per training process: the CPUs left after one per training process (it collates,
    copies batches to the GPU and drives the kernels), shared among the GPU processes."""
    procs = max(gpus, 1)
    return max(1, min(MAX_WORKERS_PER_GPU, (cpus - procs) // procs))


@dataclass
class LoaderChoice:
    overrides: Dict[str, Any] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    workers: Optional[int] = None
    shared_memory: Optional[bool] = None


def parse_workers(text: Union[None, int, str]) -> Union[None, int, str]:
    """``--workers``: None (the config's), ``auto`` or a count >= 0."""
    if text is None or text == "auto":
        return text
    try:
        value = int(text)
    except (TypeError, ValueError):
        value = -1
    if value < 0:
        raise ConfigError(f"--workers {text!r} is neither auto nor a count.",
                          "pass --workers auto, or a number such as 4 (0: load in the training process).")
    return value


def choose_loader(cfg: Mapping[str, Any], workers: Union[None, int, str] = None, *, gpus: int = 1,
                  cpus: Optional[CpuProbe] = None, shm: Optional[ShmProbe] = None,
                  shm_path: Union[str, Path] = SHM_PATH) -> LoaderChoice:
    """The ``-o`` overrides for the loaders and a note for each decision (to be logged).

    ``workers``: None keeps the config's ``num_workers``; ``auto`` sizes them with
    :func:`auto_workers` from the probed CPUs; a number is used as given. Then, for each mode
    whose workers hand batches over in shared memory, ``use_shared_memory`` is turned off when
    ``/dev/shm`` cannot hold what they prefetch. ``cpus``/``shm`` are the probes (probed here
    when not given)."""
    workers = parse_workers(workers)
    choice = LoaderChoice()
    cpus = cpus or probe_cpus()
    for mode in ("Train", "Eval"):
        loader = (cfg.get(mode) or {}).get("loader")
        if not isinstance(loader, dict):
            continue
        configured = int(loader.get("num_workers", 0) or 0)
        if workers == "auto":
            n = auto_workers(cpus.usable, gpus)
            if mode == "Eval":
                n = min(n, max(configured, 1))
            choice.overrides[f"{mode}.loader.num_workers"] = n
            choice.notes.append(f"{mode}.loader.num_workers = {n} (was {configured}): {cpus.why}, "
                                f"{max(gpus, 1)} training process(es), one CPU kept for each")
        elif isinstance(workers, int) and mode == "Train":
            n = workers
            choice.overrides[f"{mode}.loader.num_workers"] = n
            choice.notes.append(f"Train.loader.num_workers = {n} (--workers; was {configured})")
        else:
            n = configured
            per_proc = max(1, cpus.usable // max(gpus, 1))
            if mode == "Train" and n > per_proc:
                choice.notes.append(f"Train.loader.num_workers {n} is more than the {cpus.usable} "
                                    f"usable CPU(s) ({cpus.why}): the workers compete for them. "
                                    "Fix: --workers auto.")
        if mode == "Train":
            choice.workers = n
        if n <= 0 or loader.get("use_shared_memory", True) is False:
            continue
        probe = shm if shm is not None else probe_shm(shm_path)
        need = shm_needed(cfg, n, mode) * max(gpus, 1)
        if probe is None or probe.free < need:
            have = ("absent" if probe is None
                    else f"{probe.free / 1e6:.0f} MB free of {probe.total / 1e6:.0f} MB")
            choice.overrides[f"{mode}.loader.use_shared_memory"] = False
            if mode == "Train":
                choice.shared_memory = False
            choice.notes.append(
                f"{mode}.loader.use_shared_memory = false: {shm_path} is {have}, {n} worker(s) "
                f"x {max(gpus, 1)} process(es) need about {need / 1e6:.0f} MB. Batches now go "
                "through pipes (slower, no bus error). Fix: give the container more shared "
                "memory (docker run --shm-size=2g).")
        elif mode == "Train":
            choice.shared_memory = True
    return choice


def apply_loader_choice(cfg: Mapping[str, Any], overrides: Dict[str, Any],
                        workers: Union[None, int, str], gpus: int = 1) -> LoaderChoice:
    """The runner's hook: add the loader overrides to ``overrides`` (explicit ones win) and log
    each decision."""
    choice = choose_loader(cfg, workers, gpus=gpus)
    for key, value in choice.overrides.items():
        overrides.setdefault(key, value)
    for note in choice.notes:
        log.info("loader: %s", note)
    return choice
