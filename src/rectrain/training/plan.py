"""Bounded lost work without modifying PaddleOCR: sub-epochs.

The engine saves ``latest`` only at the end of an epoch, and a resume starts at the next
epoch (``start_epoch = states.epoch + 1``), so an interruption loses the whole current epoch.
``tools/program.py`` rebuilds the train loader at every epoch when the dataset says
``need_reset`` (any ``ratio_list`` entry < 1), with ``seed=epoch``, and ``SimpleDataSet``
then draws ``round(n * ratio)`` lines at random. So one real epoch is run as K engine
"sub-epochs" of ratio 1/K each (``epoch_num x K``), and everything the config counts in
epochs is scaled by K (``warmup_epoch``, ``decay_epochs``, Step ``step_size``,
``save_epoch_step``, ``eval_batch_epoch``). The learning-rate schedules count steps
(``epochs x step_each_epoch``), which K does not change, so the schedule over the run is the
same. ``latest`` is then saved every 1/K epoch. K is chosen from the estimated epoch time and
``--checkpoint-every`` and kept for the whole run (run-state.json) so resumes agree.

Each sub-epoch samples its 1/K independently (seeded by the engine epoch): over a real
epoch every image is seen once on average (as with sampling with replacement between
sub-epochs) rather than exactly once. See docs/checkpoints.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from rectrain.engine.datasets import LABEL_DATASETS

# Conservative throughput guesses (samples/s per device) used before anything is measured.
ASSUMED_IPS = {"gpu": 250.0, "cpu": 15.0}


@dataclass
class TrainPlan:
    sub_epochs: int = 1
    epochs: int = 1  # real epochs
    engine_epochs: int = 1
    train_samples: Optional[int] = None
    steps_per_epoch: Optional[int] = None  # real epoch
    estimated_epoch_s: Optional[float] = None
    overrides: Dict[str, Any] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def count_train_samples(config: Dict[str, Any], base_dir: Optional[Path] = None) -> Optional[int]:
    """Lines of the train label files, or None when the dataset is not label-file based."""
    dataset = (config.get("Train") or {}).get("dataset") or {}
    if dataset.get("name") not in LABEL_DATASETS:
        return None
    files = dataset.get("label_file_list") or []
    if isinstance(files, str):
        files = [files]
    ratios = dataset.get("ratio_list", 1.0)
    if isinstance(ratios, (int, float)):
        ratios = [float(ratios)] * len(files)
    total = 0
    for path, ratio in zip(files, ratios):
        p = Path(path)
        if not p.is_absolute() and base_dir is not None and not p.exists():
            p = base_dir / p
        try:
            with p.open("rb") as fh:
                n = sum(1 for _ in fh)
        except OSError:
            return None
        total += round(n * float(ratio))
    return total


def _world(gpus: Optional[List[int]], nnodes: int, device: str) -> int:
    per_node = len(gpus) if (device == "gpu" and gpus) else 1
    return max(1, per_node) * max(1, nnodes)


def make_plan(config: Dict[str, Any], *, device: str = "gpu", gpus: Optional[List[int]] = None,
              nnodes: int = 1, checkpoint_every_min: float = 30.0,
              sub_epochs: Optional[int] = None, max_steps: Optional[int] = None,
              measured_ips: Optional[float] = None, base_dir: Optional[Path] = None) -> TrainPlan:
    """Choose K and the ``-o`` overrides that implement it (and ``max_steps``)."""
    g = config.get("Global") or {}
    epochs = int(g.get("epoch_num", 1))
    loader = (config.get("Train") or {}).get("loader") or {}
    batch = int(loader.get("batch_size_per_card", 1) or 1)
    world = _world(gpus, nnodes, device)
    n = count_train_samples(config, base_dir)
    plan = TrainPlan(epochs=epochs, engine_epochs=epochs, train_samples=n)
    if n is not None:
        plan.steps_per_epoch = max(1, n // (batch * world)) if loader.get("drop_last", True) \
            else max(1, math.ceil(n / (batch * world)))
    dataset = (config.get("Train") or {}).get("dataset") or {}
    ratios = dataset.get("ratio_list", 1.0)
    n_files = len(dataset.get("label_file_list") or []) or 1
    if isinstance(ratios, (int, float)):
        ratios = [float(ratios)] * n_files

    if max_steps:
        if n is None or not plan.steps_per_epoch:
            plan.notes.append("--max-steps: the dataset cannot be counted; the engine is stopped "
                              "at that step (no final checkpoint).")
            return plan
        spe = plan.steps_per_epoch
        if max_steps < spe:
            frac = max_steps / spe
            plan.overrides["Train.dataset.ratio_list"] = [round(r * frac, 6) for r in ratios]
            plan.overrides["Global.epoch_num"] = 1
            plan.engine_epochs, plan.epochs = 1, 1
        else:
            plan.engine_epochs = plan.epochs = math.ceil(max_steps / spe)
            plan.overrides["Global.epoch_num"] = plan.engine_epochs
        step = g.get("eval_batch_step")
        if isinstance(step, list) and len(step) >= 2 and step[1] > max_steps:
            plan.overrides["Global.eval_batch_step"] = [0, int(max_steps)]
        plan.notes.append(f"--max-steps {max_steps}: {plan.engine_epochs} engine epoch(s) of "
                          f"about {min(max_steps, spe)} steps.")
        return plan

    k = 1
    if sub_epochs:
        k = int(sub_epochs)
    elif n is not None and checkpoint_every_min and checkpoint_every_min > 0:
        ips = measured_ips or ASSUMED_IPS.get(device, 15.0) * world
        plan.estimated_epoch_s = n / ips
        k = math.ceil(plan.estimated_epoch_s / (checkpoint_every_min * 60.0))
    if n is None and k > 1:
        plan.notes.append(f"{dataset.get('name')} has no ratio_list: sub-epochs are off; work lost "
                          "to an interruption is bounded by one epoch.")
        k = 1
    if plan.steps_per_epoch:
        k = max(1, min(k, plan.steps_per_epoch))  # at least one batch per sub-epoch
    plan.sub_epochs = max(1, k)
    if plan.sub_epochs == 1:
        return plan
    k = plan.sub_epochs
    plan.engine_epochs = epochs * k
    ov = plan.overrides
    ov["Global.epoch_num"] = epochs * k
    ov["Train.dataset.ratio_list"] = [round(float(r) / k, 8) for r in ratios]
    ov["Global.save_epoch_step"] = int(g.get("save_epoch_step", 1) or 1) * k
    if g.get("eval_batch_epoch"):
        ov["Global.eval_batch_epoch"] = g["eval_batch_epoch"] * k
    if int(g.get("calc_epoch_interval", 1) or 1) > 1:
        ov["Global.calc_epoch_interval"] = int(g["calc_epoch_interval"]) * k
    lr = ((config.get("Optimizer") or {}).get("lr")) or {}
    if isinstance(lr, dict):
        if lr.get("warmup_epoch"):
            ov["Optimizer.lr.warmup_epoch"] = lr["warmup_epoch"] * k
        if lr.get("decay_epochs"):
            ov["Optimizer.lr.decay_epochs"] = [e * k for e in lr["decay_epochs"]]
        if lr.get("name") == "Step" and lr.get("step_size"):
            ov["Optimizer.lr.step_size"] = lr["step_size"] * k
        if lr.get("name") == "CyclicalCosine" and lr.get("cycle"):
            ov["Optimizer.lr.cycle"] = lr["cycle"] * k
    plan.notes.append(f"each epoch runs as {k} sub-epochs so `latest` is saved about every "
                      f"{checkpoint_every_min:g} min (estimate); see docs/checkpoints.md.")
    return plan
