"""``rectrain bench loader``: how many samples per second can N CPUs feed with this config?

The engine's own data pipeline (its dataset class, transforms, sampler and collation, built by
``ppocr.data.build_dataloader``) runs in a subprocess with the engine on ``sys.path``
(``loaderbench/probe.py``), as training does: rectrain never imports the engine for training. No
model is built. The figures: samples/s through the engine's ``DataLoader`` with N workers, per
worker, and where a sample's time goes (read, decode, each transform, collation) measured in one
process; then what the common SageMaker GPU instances could feed at that per-worker rate.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from rectrain.engine.config import load_engine_config
from rectrain.engine.launch import engine_env, format_override
from rectrain.engine.locate import Engine, find_engine
from rectrain.errors import ConfigError, EngineFailure
from rectrain.logs import get_logger
from rectrain.machine.instances import gpu_types
from rectrain.machine.probes import probe_cpus
from rectrain.training.workers import auto_workers, choose_loader

log = get_logger("loaderbench")

PROBE = Path(__file__).resolve().parent / "probe.py"
MARKER = "RECTRAIN_BENCH_JSON "

Command = Tuple[List[str], Dict[str, str]]


def loader_bench_command(engine: Engine, config: Union[str, Path], workers: int, *,
                         seconds: float = 10.0, profile_seconds: Optional[float] = None,
                         mode: str = "Train", overrides: Optional[Dict[str, Any]] = None,
                         profile_only: bool = False) -> Command:
    """The probe's command as data: ``(argv, env)``."""
    argv = [engine.python, "-u", str(PROBE), "--config", str(config), "--workers", str(int(workers)),
            "--seconds", f"{float(seconds):g}", "--mode", mode]
    if profile_seconds is not None:
        argv += ["--profile-seconds", f"{float(profile_seconds):g}"]
    if profile_only:
        argv.append("--no-loader")
    if overrides:
        argv += ["-o"] + [format_override(k, v) for k, v in overrides.items()]
    return argv, engine_env(engine)


@dataclass
class LoaderBench:
    config: str
    workers: int
    samples_per_s: float
    per_worker: float
    profile_samples_per_s: float
    stages: List[Dict[str, Any]]
    startup_s: float
    dataset: str
    batch_size: int
    use_shared_memory: bool
    usable_cpus: int
    notes: List[str] = field(default_factory=list)
    raw: Dict[str, Any] = field(default_factory=dict)

    def stage_share(self, name: str) -> float:
        return sum(s["share"] for s in self.stages if s["stage"] == name)

    def instances(self) -> List[Dict[str, Any]]:
        """What each common SageMaker GPU instance could feed at this per-worker rate, with the
        workers ``--workers auto`` would give it."""
        rate = self.per_worker
        out = []
        for inst in gpu_types():
            w = auto_workers(inst.vcpus, inst.gpus)
            out.append({"instance": inst.name, "vcpus": inst.vcpus, "gpus": inst.gpus,
                        "gpu": inst.gpu, "workers_per_gpu": w,
                        "samples_per_s": round(rate * w * inst.gpus, 1)})
        return out

    def to_dict(self) -> Dict[str, Any]:
        return {"config": self.config, "workers": self.workers,
                "samples_per_s": self.samples_per_s, "per_worker": self.per_worker,
                "profile_samples_per_s": self.profile_samples_per_s,
                "stages": self.stages, "startup_s": self.startup_s, "dataset": self.dataset,
                "batch_size": self.batch_size, "use_shared_memory": self.use_shared_memory,
                "usable_cpus": self.usable_cpus, "notes": self.notes,
                "instances": self.instances(), "probe": self.raw}


def _parse(stdout: str, stderr: str, argv: Sequence[str]) -> Dict[str, Any]:
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER):])
    tail = "\n".join((stderr or stdout).strip().splitlines()[-15:])
    raise EngineFailure(f"the engine's data pipeline failed:\n{tail}",
                        "check the config's data paths and transforms with `rectrain config check`, "
                        "then rerun.")


def run_probe(engine: Engine, config: Union[str, Path], workers: int, *, seconds: float = 10.0,
              profile_seconds: Optional[float] = None, overrides: Optional[Dict[str, Any]] = None,
              profile_only: bool = False, timeout: Optional[float] = None) -> Dict[str, Any]:
    """Run the probe and return its JSON (raises EngineFailure with the engine's words)."""
    argv, env = loader_bench_command(engine, config, workers, seconds=seconds,
                                     profile_seconds=profile_seconds, overrides=overrides,
                                     profile_only=profile_only)
    limit = timeout if timeout is not None else 4 * seconds + 300
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=limit,
                              start_new_session=True)
    except subprocess.TimeoutExpired as exc:
        raise EngineFailure(f"the loader benchmark took more than {limit:.0f} s.",
                            "use fewer --seconds, or check that the data folder is readable.") from exc
    if proc.returncode != 0:
        _parse("", proc.stderr + proc.stdout, argv)
    return _parse(proc.stdout, proc.stderr, argv)


def bench_loader(config: Union[str, Path], workers: Union[None, int, str] = "auto", *,
                 seconds: float = 10.0, paddleocr_dir: Optional[str] = None,
                 overrides: Optional[Dict[str, Any]] = None) -> LoaderBench:
    """Measure the engine's loader for ``config`` with ``workers`` (``auto``: as ``train
    --workers auto`` would choose; None: the config's own)."""
    path = Path(config).expanduser()
    if seconds <= 0:
        raise ConfigError(f"--seconds {seconds}: must be positive.", "pass e.g. --seconds 10.")
    cfg = load_engine_config(path, require=("Train",)).data
    cpus = probe_cpus()
    choice = choose_loader(cfg, workers, gpus=1, cpus=cpus)
    n = choice.workers if choice.workers is not None else 0
    ov = {k: v for k, v in choice.overrides.items() if k.startswith("Train.")}
    ov.update(overrides or {})
    engine = find_engine(paddleocr_dir)
    log.info("loader benchmark: %s, %d worker(s), %.0f s (%s)", path.name, n, seconds, cpus.why)
    raw = run_probe(engine, path.resolve(), n, seconds=seconds, overrides=ov)
    loader = raw.get("loader") or {}
    prof = raw.get("profile") or {}
    rate = float(loader.get("samples_per_s") or 0.0)
    return LoaderBench(
        config=str(path), workers=n, samples_per_s=rate, per_worker=round(rate / max(n, 1), 2),
        profile_samples_per_s=float(prof.get("samples_per_s") or 0.0),
        stages=list(prof.get("stages") or []), startup_s=float(loader.get("startup_s") or 0.0),
        dataset=str(raw.get("dataset")), batch_size=int(raw.get("batch_size") or 0),
        use_shared_memory=bool(raw.get("use_shared_memory")), usable_cpus=cpus.usable,
        notes=choice.notes, raw=raw)


def format_report(b: LoaderBench) -> str:
    lines = [f"loader benchmark: {b.config}",
             f"  {b.dataset}, batch {b.batch_size}, {b.workers} worker(s) "
             f"(shared memory {'on' if b.use_shared_memory else 'off'}), {b.usable_cpus} usable CPU(s)",
             f"  {b.samples_per_s:,.0f} samples/s through the engine's loader, "
             f"{b.per_worker:,.0f} per worker; {b.startup_s:.2f} s to the first batch of an epoch",
             f"  one process, stage by stage: {b.profile_samples_per_s:,.0f} samples/s",
             "  where a sample's time goes:"]
    for s in b.stages:
        lines.append(f"    {s['stage']:<44} {s['ms_per_sample']:8.3f} ms  {100 * s['share']:5.1f}%")
    lines.append("  SageMaker GPU instances at this rate per worker (workers as --workers auto):")
    for row in b.instances():
        lines.append(f"    {row['instance']:<18} {row['vcpus']:>3} vCPU  {row['gpus']} x {row['gpu']:<5} "
                     f"{row['workers_per_gpu']:>2} worker(s)/GPU  ~{row['samples_per_s']:>10,.0f} samples/s")
    lines.append("  (a GPU step that consumes more samples/s than this starves: add vCPUs, "
                 "pre-shrink images with `data pack --max-height`, or lighten the augmentations)")
    lines += [f"  note: {n}" for n in b.notes]
    return "\n".join(lines)
