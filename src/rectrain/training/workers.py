"""The run's data-loader policy: workers sized for the machine, and the ``/dev/shm`` check (the
machine's facts come from :mod:`rectrain.machine.probes`).

The engine's loader settings are ``Train.loader.num_workers`` / ``Eval.loader.num_workers`` and
``<Mode>.loader.use_shared_memory`` (``ppocr/data/__init__.py`` ``build_dataloader``: absent
means ``True``; the workers then hand batches over in ``/dev/shm``). Docker's default
``/dev/shm`` is 64 MB, and a worker that cannot map its batch dies with a bus error
(PaddleOCR #9391, #6530).

What the machine gives is probed, not assumed (:func:`rectrain.machine.probes.probe_cpus`: the
affinity mask bounded by the cgroup CPU quota; :func:`~rectrain.machine.probes.probe_shm`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from rectrain.errors import ConfigError
from rectrain.logs import get_logger
from rectrain.machine.probes import SHM_PATH, CpuProbe, ShmProbe, probe_cpus, probe_shm

log = get_logger("training.workers")

MAX_WORKERS_PER_GPU = 16  # beyond this the main process's collation is the limit
SHM_SAFETY = 2.0  # room for batches in flight besides the prefetched ones


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
