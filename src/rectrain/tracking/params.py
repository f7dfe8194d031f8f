"""What a tracked run records about itself: key hyperparameters, the config fields that
differ from the base config, and tags (versions, device, dataset hash)."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from rectrain._version import __version__
from rectrain.engine.config import load_engine_config
from rectrain.errors import ConfigError

MAX_VALUE = 500  # characters per parameter value (MLflow accepts 6000; keep the UI readable)
MAX_CHANGED = 80

# (parameter name, config path): the hyperparameters people compare runs by
KEY_HYPERPARAMETERS: List[Tuple[str, Tuple[str, ...]]] = [
    ("algorithm", ("Architecture", "algorithm")),
    ("backbone", ("Architecture", "Backbone", "name")),
    ("backbone_scale", ("Architecture", "Backbone", "scale")),
    ("neck", ("Architecture", "Neck", "name")),
    ("head", ("Architecture", "Head", "name")),
    ("epochs", ("Global", "epoch_num")),
    ("batch_size", ("Train", "loader", "batch_size_per_card")),
    ("optimizer", ("Optimizer", "name")),
    ("lr", ("Optimizer", "lr", "learning_rate")),
    ("lr_schedule", ("Optimizer", "lr", "name")),
    ("warmup_epoch", ("Optimizer", "lr", "warmup_epoch")),
    ("weight_decay", ("Optimizer", "regularizer", "factor")),
    ("max_text_length", ("Global", "max_text_length")),
    ("use_space_char", ("Global", "use_space_char")),
    ("dictionary", ("Global", "character_dict_path")),
    ("pretrained_model", ("Global", "pretrained_model")),
    ("use_amp", ("Global", "use_amp")),
    ("eval_batch_step", ("Global", "eval_batch_step")),
    ("loss", ("Loss", "name")),
]


def _get(cfg: Dict[str, Any], path: Tuple[str, ...]) -> Any:
    node: Any = cfg
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def flatten(cfg: Any, prefix: str = "") -> Dict[str, Any]:
    """``{"Global.epoch_num": 50, ...}``: dict leaves by dotted path; lists stay whole."""
    out: Dict[str, Any] = {}
    if isinstance(cfg, dict):
        for key, value in cfg.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict) and value:
                out.update(flatten(value, path))
            else:
                out[path] = value
    return out


def image_shape(cfg: Dict[str, Any]) -> Optional[List[int]]:
    for op in _get(cfg, ("Train", "dataset", "transforms")) or []:
        if isinstance(op, dict):
            for name, args in op.items():
                if isinstance(args, dict) and "image_shape" in args and "Resize" in str(name):
                    return list(args["image_shape"])
    return None


def base_config_for(config_path: Optional[Path]) -> Optional[Path]:
    """``rectrain config build`` keeps the base it started from as ``<out>.base.yml``."""
    if config_path is None:
        return None
    candidate = config_path.with_name(config_path.name.rsplit(".", 1)[0] + ".base.yml")
    return candidate if candidate.is_file() else None


def changed_fields(cfg: Dict[str, Any], config_path: Optional[Path]) -> Dict[str, Any]:
    """Fields whose value differs from the base config (none when there is no base file)."""
    base_path = base_config_for(config_path)
    if base_path is None:
        return {}
    try:
        base = load_engine_config(base_path).data
    except (OSError, ConfigError):
        return {}
    now, before = flatten(cfg), flatten(base)
    changed = {k: v for k, v in now.items() if before.get(k, object()) != v}
    return dict(sorted(changed.items())[:MAX_CHANGED])


def run_params(cfg: Dict[str, Any], config_path: Optional[Path], info: Dict[str, Any]) -> Dict[str, str]:
    """Key hyperparameters, the plan (sub-epochs, device, world size) and ``cfg.<field>`` for
    every field changed from the base config; every value a string."""
    params: Dict[str, str] = {}
    for name, path in KEY_HYPERPARAMETERS:
        value = _get(cfg, path)
        if value is not None:
            params[name] = _text(Path(value).name if name == "dictionary" else value)
    shape = image_shape(cfg)
    if shape:
        params["image_shape"] = _text(shape)
    for key in ("device", "gpus", "nnodes", "sub_epochs", "engine_epochs", "max_steps"):
        if info.get(key) not in (None, "", []):
            params[key] = _text(info[key])
    for key, value in changed_fields(cfg, config_path).items():
        params[f"cfg.{key}"] = _text(value)
    return params


def dataset_hash(cfg: Dict[str, Any]) -> Optional[str]:
    """sha256 over the training label files (or the packed dataset's manifest.jsonl beside
    them): the same data gives the same hash on any machine."""
    dataset = _get(cfg, ("Train", "dataset")) or {}
    files = dataset.get("label_file_list") or []
    if isinstance(files, str):
        files = [files]
    digest = hashlib.sha256()
    found = False
    for name in files:
        path = Path(str(name))
        if not path.is_absolute() and dataset.get("data_dir"):
            path = Path(str(dataset["data_dir"])) / path if not path.is_file() else path
        manifest = path.parent / "manifest.jsonl"
        target = manifest if manifest.is_file() else path
        if target.is_file():
            found = True
            with target.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest() if found else None


def run_tags(cfg: Dict[str, Any], config_path: Optional[Path], info: Dict[str, Any]) -> Dict[str, str]:
    tags = {"rectrain.version": __version__, "host": socket.gethostname()}
    for key in ("engine", "engine_version", "paddle_version", "device", "run_dir", "rectrain_run_id",
                "sagemaker_job", "instance_type"):
        if info.get(key):
            tags[f"rectrain.{key}" if key != "device" else "device"] = _text(info[key])
    digest = dataset_hash(cfg)
    if digest:
        tags["dataset.sha256"] = digest
    if config_path is not None:
        tags["rectrain.config"] = config_path.name
    return tags
