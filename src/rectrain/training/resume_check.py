"""What a run may change when it resumes, and what it must not change silently.

A resumed run continues the engine's schedule (step count, learning-rate scheduler state) and
model (weights, dictionary-sized head). A config that changed the batch size, the epochs, the
learning rate, the architecture or the dictionary between two segments gives a run that no
single config describes (the schedule never finishes, or a head that does not fit): it is
refused with the differences listed, or accepted with ``--allow-config-change`` and logged.

The fingerprint of the config is kept in run-state.json (mirrored to S3 with the checkpoints),
so a resume on a new machine compares with the config the run started with.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from rectrain.errors import UserError

# what alters the schedule or the model: (name shown, path in the config)
FIELDS = (
    ("epochs", ("Global", "epoch_num")),
    ("batch size", ("Train", "loader", "batch_size_per_card")),
    ("sampler", ("Train", "sampler")),
    ("learning rate", ("Optimizer", "lr")),
    ("optimizer", ("Optimizer", "name")),
    ("architecture", ("Architecture",)),
    ("max_text_length", ("Global", "max_text_length")),
    ("use_space_char", ("Global", "use_space_char")),
)  # the dictionary by its content (a moved data folder is no change)


def _get(cfg: Dict[str, Any], path: tuple) -> Any:
    cur: Any = cfg
    for key in path:
        if not isinstance(cur, dict) or key not in cur:
            return None
        cur = cur[key]
    return cur


def _dict_sha256(cfg: Dict[str, Any]) -> Optional[str]:
    path = _get(cfg, ("Global", "character_dict_path"))
    if not path:
        return None
    try:
        return hashlib.sha256(Path(str(path)).read_bytes()).hexdigest()
    except OSError:
        return None


def fingerprint(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """The fields of ``cfg`` a resume must not change, as JSON-able values, plus the
    dictionary's content hash. (rectrain's own plan, sub-epochs and the --max-steps of the
    first start, is kept in run-state.json and reused by every resume.)"""
    out: Dict[str, Any] = {}
    for name, path in FIELDS:
        out[name] = json.loads(json.dumps(_get(cfg, path), sort_keys=True, default=str))
    out["dictionary content"] = _dict_sha256(cfg)
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    if isinstance(value, str) and len(value) == 64:  # a sha256
        return value[:12]
    return text if len(text) <= 80 else text[:77] + "..."


def differences(old: Dict[str, Any], new: Dict[str, Any]) -> List[str]:
    """``name: old -> new`` for each field that differs (fields absent from ``old``, e.g. a
    run-state written before they were recorded, are not compared)."""
    out = []
    for name, value in new.items():
        if name in old and old[name] != value:
            if isinstance(old[name], dict) and isinstance(value, dict):
                keys = sorted(set(old[name]) | set(value), key=str)
                parts = [f"{k}: {_short(old[name].get(k))} -> {_short(value.get(k))}"
                         for k in keys if old[name].get(k) != value.get(k)]
                out.append(f"{name} ({'; '.join(parts[:4])}{' ...' if len(parts) > 4 else ''})")
            else:
                out.append(f"{name}: {_short(old[name])} -> {_short(value)}")
    return out


def check_config_change(old: Dict[str, Any], new: Dict[str, Any], *, allow: bool,
                        config: str) -> List[str]:
    """Refuse a resume whose config changed what the run depends on (UserError, exit 2), or,
    with ``allow``, return the differences for the caller to log."""
    diffs = differences(old, new)
    if diffs and not allow:
        raise UserError(
            f"--resume with a config that differs from the one this run started with ({config}): "
            + "; ".join(diffs) + ". The resumed schedule and model would match neither config.",
            "resume with the run's own config (RUN_DIR/config.yml), start a new run (--run-dir "
            "NEW, optionally --pretrained from this run's best checkpoint), or pass "
            "--allow-config-change to continue anyway (logged in run-state.json).")
    return diffs


def past_max_steps_message(step: int, max_steps: Optional[int], plan_max_steps: Optional[int]
                           ) -> Optional[str]:
    """What a resume does when there is nothing left to train (None when there is)."""
    if max_steps and step >= max_steps:
        return (f"--resume --max-steps {max_steps}: the run is already at step {step} (its newest "
                f"checkpoint), at or past {max_steps}; nothing is trained and the engine is not "
                "started. Rerun with a larger --max-steps, or without it to finish the schedule.")
    if plan_max_steps and step >= plan_max_steps:
        return (f"--resume: this run was started with --max-steps {plan_max_steps}, which made its "
                f"whole schedule (epochs, learning rate) end there, and it is at step {step}: "
                "nothing is left to train and the engine is not started. To train longer, start a "
                "new run (--run-dir NEW) with --pretrained RUN_DIR/checkpoints/best_of_run/best_of_run.")
    return None
