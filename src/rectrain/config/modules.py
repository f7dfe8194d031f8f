"""Config structure checks: PaddleOCR 1.x configs, and module names/parameters that the
selected engine does not know (read from the engine by :mod:`rectrain.config.knowledge`)."""

from __future__ import annotations

import difflib
import re
from typing import Any, Dict, Iterable, List, Optional, Tuple

from rectrain.config.knowledge import EngineKnowledge
from rectrain.errors import ConfigError
from rectrain.logs import get_logger

log = get_logger("config")

V2_FIX = ("start from a PaddleOCR 2.x config: a preset (`rectrain config presets`, e.g. --base "
          "crnn-mv3) or a configs/rec/*.yml from PaddleOCR 2.x/3.x.")


def refuse_v1(config: Dict[str, Any], source: str) -> None:
    """PaddleOCR 1.x configs name classes as ``function: module,Class`` and read data through
    ``reader_yml``; a 2.x engine cannot run them and they cannot be converted faithfully."""
    hits: List[str] = []
    for section, value in config.items():
        if isinstance(value, dict) and "function" in value:
            hits.append(f"{section}.function: {value['function']}")
    glob: Dict[str, Any] = config["Global"] if isinstance(config.get("Global"), dict) else {}
    for key in ("reader_yml", "train_batch_size_per_card", "loss_type", "pretrain_weights"):
        if key in glob:
            hits.append(f"Global.{key}")
    if hits:
        raise ConfigError(
            f"{source} is a PaddleOCR 1.x config ({'; '.join(hits[:3])}); the 2.x training "
            "engine cannot run 1.x configs (2.x names modules with Architecture.algorithm and "
            "Backbone/Neck/Head 'name', and data with Train/Eval sections).", V2_FIX)


IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _eval_names(value: Any, where: str) -> Iterable[Tuple[str, Any]]:
    """``(where, name)`` of every class name the engine resolves with ``eval``: ``name`` keys
    (modules, losses, datasets, ...) and the keys of ``transforms`` lists."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "name":
                yield f"{where}.name", item
            elif key == "transforms" and isinstance(item, list):
                for i, op in enumerate(item):
                    for op_name in (op if isinstance(op, dict) else {}):
                        yield f"{where}.transforms[{i}]", op_name
            yield from _eval_names(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _eval_names(item, f"{where}[{i}]")


def refuse_code_in_names(config: Dict[str, Any], source: str) -> None:
    """The engine builds modules, losses, datasets and transforms with ``eval(name)``: a name
    that is not a plain identifier would run as code in the engine (a config from S3, a
    channel or someone else). Raises :class:`ConfigError` naming the field."""
    for section in ("Architecture", "Loss", "Optimizer", "PostProcess", "Metric", "Train", "Eval"):
        for where, name in _eval_names(config.get(section), section):
            if not isinstance(name, str) or not IDENTIFIER.match(name):
                raise ConfigError(f"{source}: {where} is {str(name)[:80]!r}, not a class name "
                                  "(the engine evaluates it as Python).",
                                  "write the name of a PaddleOCR class there (e.g. MobileNetV3).")


def require_sections(config: Dict[str, Any], source: str) -> None:
    missing = [s for s in ("Global", "Architecture", "Loss", "Optimizer", "PostProcess",
                           "Metric", "Train", "Eval") if not isinstance(config.get(s), dict)]
    if missing:
        typos = [f"{found!r} (a typo of {m}?)" for m in missing for found in
                 difflib.get_close_matches(m, [str(x) for x in config if x not in SECTIONS], 1, 0.6)]
        if typos:
            raise ConfigError(f"{source}: missing section(s) {', '.join(missing)}; the config has "
                              f"{', '.join(typos)}, which the engine would not read.",
                              "correct the section name (names are case-sensitive).")
        raise ConfigError(f"{source}: missing section(s) {', '.join(missing)}; a PaddleOCR "
                          "recognition training config needs Global, Architecture, Loss, "
                          "Optimizer, PostProcess, Metric, Train and Eval.", V2_FIX)
    arch = config["Architecture"]
    mtype = arch.get("model_type")
    if mtype != "rec":
        raise ConfigError(
            f"{source}: Architecture.model_type is {mtype!r}; rectrain trains text recognition "
            "(model_type: rec) only.", "use a recognition config (configs/rec/*.yml) or a preset.")
    for mode in ("Train", "Eval"):
        sec = config[mode]
        if not isinstance(sec.get("dataset"), dict) or not isinstance(sec.get("loader"), dict):
            raise ConfigError(f"{source}: {mode} needs 'dataset' and 'loader' mappings.",
                              f"add {mode}.dataset (name, transforms) and {mode}.loader "
                              "(batch_size_per_card, shuffle, drop_last, num_workers).")


def _unknown(field: str, kind: str, name: Any, known: Iterable[str], engine: str) -> ConfigError:
    known = sorted(known)
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    shown = ", ".join(known) if len(known) <= 40 else ", ".join(known[:40]) + ", ..."
    return ConfigError(
        f"{field}: {kind} {name!r} is not known to the selected engine ({engine}); it knows: "
        f"{shown}.",
        f"{hint}use a {kind} this engine has, or select an engine that has {name!r} "
        "(--paddleocr-dir / PADDLEOCR_HOME pointing at a PaddleOCR checkout).")


def _check_params(k: EngineKnowledge, kind: str, name: str, params: Dict[str, Any],
                  field: str, injected: Iterable[str] = ()) -> None:
    """Refuse a key the engine's class never reads. ``injected``: keys the engine adds itself
    (never a user's typo, e.g. Global's keys merged into every data operator)."""
    info = k.classes.get((kind, name))
    if info is None or info.params is None or info.var_kw:
        return
    extra = [p for p in params if p not in info.params and p not in injected]
    if not extra:
        return
    bad = str(extra[0])
    close = difflib.get_close_matches(bad, info.params, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? Correct" if close else "correct"
    raise ConfigError(
        f"{field}.{bad}: the selected engine's {kind} {name} ({k.engine_name}, "
        f"{info.module.lstrip('.')}) has no parameter {bad!r} (it takes: "
        f"{', '.join(info.params) or 'none'}); the engine would ignore it or fail on it.",
        f"{hint} the key (or remove it); if this config was written for another PaddleOCR "
        f"version whose {name} takes {bad!r}, select that engine (--paddleocr-dir / "
        "PADDLEOCR_HOME).")


SECTIONS = ("Global", "Architecture", "Loss", "Optimizer", "PostProcess", "Metric", "Train", "Eval")
_SECTION_KEYS = {"Train": ("dataset", "loader", "sampler"), "Eval": ("dataset", "loader", "sampler")}


_NOTED: set = set()


def _unread(field: str, key: Any, known: Iterable[str], k: EngineKnowledge, what: str,
            cutoff: float = 0.85) -> None:
    """A key no engine code reads: an error when it looks like a typo of one it reads (the
    typo would be ignored silently), else a warning (official configs carry a few unread
    keys, e.g. Global.debug)."""
    cands = sorted({str(x) for x in known})
    close = difflib.get_close_matches(str(key), cands, n=1, cutoff=cutoff)
    if close:
        raise ConfigError(
            f"{field}: {key!r} is not a {what} that the selected engine ({k.engine_name}) reads; "
            "it would be ignored silently.",
            f"did you mean {close[0]!r}? Correct the name (names are case-sensitive) or remove it.")
    if (field, k.engine_name) not in _NOTED:  # once per process (the builder checks twice)
        _NOTED.add((field, k.engine_name))
        log.info("note: %s: %r is not a %s that the selected engine (%s) reads; it is ignored.",
                 field, key, what, k.engine_name)


def check_keys(config: Dict[str, Any], k: EngineKnowledge) -> None:
    """Keys the engine never reads: top-level sections (``Trian:``), Global, loader and dataset
    keys (compared with every key the engine's code reads), and the parameters of every module
    (compared with what its class really uses, ``**kwargs`` included)."""
    if not k.keys:
        return
    for section in config:
        if section not in SECTIONS and str(section) not in k.keys:
            _unread(str(section), section, SECTIONS, k, "config section", cutoff=0.6)
    lower = {x for x in k.keys if x[:1].islower()}
    # Global is merged into every data operator and the post-process: their parameters count
    merged = {p for (kind, _n), info in k.classes.items()
              if kind in ("data operator", "post-process") for p in (info.params or [])}
    for key in (config.get("Global") or {}):
        if str(key) not in k.keys and str(key) not in merged:
            _unread(f"Global.{key}", key, lower | merged, k, "Global setting")
    for mode in ("Train", "Eval"):
        sec = config.get(mode) or {}
        for key in sec:
            if key not in _SECTION_KEYS[mode] and str(key) not in k.keys:
                _unread(f"{mode}.{key}", key, _SECTION_KEYS[mode], k, f"{mode} part", cutoff=0.6)
        for part in ("loader", "dataset"):
            for key in (sec.get(part) or {}):
                if str(key) not in k.keys:
                    _unread(f"{mode}.{part}.{key}", key, lower, k, f"{part} setting")
        global_keys = list(config.get("Global") or {})
        for i, op in enumerate((sec.get("dataset") or {}).get("transforms") or []):
            if isinstance(op, dict) and len(op) == 1:
                name = next(iter(op))
                params = op[name] if isinstance(op[name], dict) else {}
                _check_params(k, "data operator", str(name), params,
                              f"{mode}.dataset.transforms[{i}].{name}", injected=global_keys)
    for section, kind in (("Loss", "loss"), ("PostProcess", "post-process"), ("Metric", "metric")):
        sec = config.get(section)
        if isinstance(sec, dict) and sec.get("name") is not None:
            _check_params(k, kind, str(sec["name"]), {x: v for x, v in sec.items() if x != "name"},
                          section)
    opt = config.get("Optimizer")
    if isinstance(opt, dict) and opt.get("name") is not None:
        own = {x: v for x, v in opt.items()
               if x not in ("name", "lr", "regularizer", "clip_norm", "clip_norm_global")}
        _check_params(k, "optimizer", str(opt["name"]), own, "Optimizer")
        lr = opt.get("lr")
        if isinstance(lr, dict):
            _check_params(k, "learning-rate schedule", str(lr.get("name", "Const")),
                          {x: v for x, v in lr.items() if x != "name"}, "Optimizer.lr")
        reg = opt.get("regularizer")
        if isinstance(reg, dict) and reg.get("name") is not None:
            rname = str(reg["name"])
            if ("regularizer", rname) not in k.classes:
                rname += "Decay"
            _check_params(k, "regularizer", rname, {x: v for x, v in reg.items() if x != "name"},
                          "Optimizer.regularizer")


def _name_of(section: Any) -> Optional[str]:
    if isinstance(section, dict):
        name = section.get("name")
        return None if name is None else str(name)
    return None


def _one_key(entry: Any, where: str, example: str) -> Any:
    """The name of an entry of an operator or head list: a one-key mapping ``{Name: params}``."""
    if not isinstance(entry, dict) or len(entry) != 1:
        raise ConfigError(f"{where} must be a one-key mapping such as '{example}'.",
                          "fix that entry.")
    return next(iter(entry))


def _check_model(k: EngineKnowledge, arch: Dict[str, Any], prefix: str) -> None:
    algo = arch.get("algorithm")
    if algo is None:
        raise ConfigError(f"{prefix}.algorithm is missing.",
                          "set it (e.g. CRNN, SVTR, SVTR_LCNet) as in the official configs.")
    if k.algorithms and algo not in k.algorithms:
        raise _unknown(f"{prefix}.algorithm", "algorithm", algo, k.algorithms, k.engine_name)
    if algo == "Distillation":
        models = arch.get("Models") or {}
        for key, sub in models.items():
            if isinstance(sub, dict):
                _check_model(k, sub, f"{prefix}.Models.{key}")
        return
    for part, kind, known in (("Transform", "transform", k.transforms),
                              ("Backbone", "backbone", k.backbones),
                              ("Neck", "neck", k.necks), ("Head", "head", k.heads)):
        sec = arch.get(part)
        name = _name_of(sec)
        if name is None:
            if part in ("Backbone", "Head") and not sec:
                raise ConfigError(f"{prefix}.{part}.name is missing.",
                                  f"name the {kind}, e.g. as in the official configs.")
            continue
        assert isinstance(sec, dict)
        if known and name not in known:
            raise _unknown(f"{prefix}.{part}.name", kind, name, known, k.engine_name)
        params = {key: v for key, v in sec.items() if key != "name"}
        _check_params(k, kind, name, params, f"{prefix}.{part}")
        if kind == "neck" and name == "SequenceEncoder":
            enc = sec.get("encoder_type")
            if k.sequence_encoders and enc not in k.sequence_encoders:
                raise _unknown(f"{prefix}.Neck.encoder_type", "sequence encoder", enc,
                               k.sequence_encoders, k.engine_name)
        if kind == "head" and name == "MultiHead":
            for i, entry in enumerate(sec.get("head_list") or []):
                sub = _one_key(entry, f"{prefix}.Head.head_list[{i}]", "CTCHead: {...}")
                if k.multi_head_parts and sub not in k.multi_head_parts:
                    raise _unknown(f"{prefix}.Head.head_list[{i}]", "MultiHead part", sub,
                                   k.multi_head_parts, k.engine_name)
                neck = (entry[sub] or {}).get("Neck") if isinstance(entry[sub], dict) else None
                enc = _name_of(neck)
                if enc is not None and k.sequence_encoders and enc not in k.sequence_encoders:
                    raise _unknown(f"{prefix}.Head.head_list[{i}].{sub}.Neck.name",
                                   "sequence encoder", enc, k.sequence_encoders, k.engine_name)


def check_modules(config: Dict[str, Any], k: EngineKnowledge, datasets: bool = True) -> None:
    """Every algorithm, module, loss, transform, dataset, sampler, post-process, metric and
    optimizer the config names must exist in the selected engine, and every key be read."""
    _check_model(k, config["Architecture"], "Architecture")
    _check_all(config, k, datasets)
    check_keys(config, k)


def _check_all(config: Dict[str, Any], k: EngineKnowledge, datasets: bool) -> None:

    loss = config["Loss"]
    name = _name_of(loss)
    if name is None:
        raise ConfigError("Loss.name is missing.", "name the loss, e.g. CTCLoss.")
    if k.losses and name not in k.losses:
        raise _unknown("Loss.name", "loss", name, k.losses, k.engine_name)
    for i, entry in enumerate(loss.get("loss_config_list") or []):
        sub = next(iter(entry)) if isinstance(entry, dict) and entry else entry
        if k.loss_parts and sub not in k.loss_parts:
            raise _unknown(f"Loss.loss_config_list[{i}]", "loss", sub, k.loss_parts,
                           k.engine_name)

    for section, kind, known in (("PostProcess", "post-process", k.postprocess),
                                 ("Metric", "metric", k.metrics)):
        name = _name_of(config[section])
        if name is None:
            raise ConfigError(f"{section}.name is missing.", "set it as in the official configs.")
        if known and name not in known and name != "None":
            raise _unknown(f"{section}.name", kind, name, known, k.engine_name)

    opt = config["Optimizer"]
    name = _name_of(opt)
    if k.optimizers and name not in k.optimizers:
        raise _unknown("Optimizer.name", "optimizer", name, k.optimizers, k.engine_name)
    lr = opt.get("lr")
    if isinstance(lr, dict):
        lr_name = lr.get("name", "Const")
        if k.lr_schedulers and lr_name not in k.lr_schedulers:
            raise _unknown("Optimizer.lr.name", "learning-rate schedule", lr_name,
                           k.lr_schedulers, k.engine_name)
    reg = opt.get("regularizer")
    if isinstance(reg, dict) and reg.get("name") is not None and k.regularizers:
        rname = str(reg["name"])
        if rname not in k.regularizers and rname + "Decay" not in k.regularizers:
            raise _unknown("Optimizer.regularizer.name", "regularizer", rname,
                           {r[:-5] if r.endswith("Decay") else r for r in k.regularizers},
                           k.engine_name)

    for mode in ("Train", "Eval"):
        ds = config[mode]["dataset"]
        name = _name_of(ds)
        if datasets and k.datasets and name not in k.datasets:
            raise _unknown(f"{mode}.dataset.name", "dataset", name, k.datasets, k.engine_name)
        transforms = ds.get("transforms")
        if not isinstance(transforms, list) or not transforms:
            raise ConfigError(f"{mode}.dataset.transforms must be a non-empty list of "
                              "operators.", "copy the transforms of an official config.")
        for i, op in enumerate(transforms):
            op_name = _one_key(op, f"{mode}.dataset.transforms[{i}]",
                               "DecodeImage: {img_mode: BGR}")
            if k.data_ops and op_name not in k.data_ops:
                raise _unknown(f"{mode}.dataset.transforms[{i}]", "data operator", op_name,
                               {n for n in k.data_ops if n[:1].isupper()}, k.engine_name)
        sampler = config[mode].get("sampler")
        if isinstance(sampler, dict):
            sname = _name_of(sampler)
            if k.samplers and sname not in k.samplers:
                raise _unknown(f"{mode}.sampler.name", "sampler", sname, k.samplers,
                               k.engine_name)
