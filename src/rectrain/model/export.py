"""Export a training checkpoint to an inference model with the engine's own exporter.

``tools/export_model.py`` runs unmodified as a subprocess. The model folder is built in a
temporary folder beside ``out_dir`` and renamed into place, so a reader never sees half a
model. It holds:

- ``inference.json`` (Paddle 3, PIR) or ``inference.pdmodel`` (older Paddle), with
  ``inference.pdiparams`` and the exporter's ``inference.yml``;
- the dictionary, under its original file name (the engine reads meaning into the name: a
  path containing ``arabic`` is decoded right to left);
- ``config.yml``: the training config as given;
- ``model.json``: engine, Paddle version, dictionary sha256 and class count, algorithm, input
  shape, ``use_space_char``, ``max_text_length``, the checkpoint and its metrics;
- ``export.log``: the exporter's output.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from rectrain._version import __version__
from rectrain.checkpoints import pickles
from rectrain.checkpoints.local import engine_prefix, pointers, read_pointer, read_states, verify_snapshot
from rectrain.engine import Engine, engine_command, find_engine
from rectrain.engine.config import load_engine_config
from rectrain.errors import ConfigError, EngineFailure, UserError
from rectrain.fsutil import sha256_file
from rectrain.logs import get_logger
from rectrain.model.card import dataset_card
from rectrain.model.deploy import FIXED_SHAPE, make_deployable, onednn_breakers
from rectrain.model.info import (
    FORMAT,
    MODEL_JSON,
    PARAMS_FILE,
    dictionary_chars,
    program_file,
)
from rectrain.model.onnx_export import convert_to_onnx
from rectrain.outputs import (
    check_replaceable_dir,
    copy_file,
    move,
    open_stream,
    remove_empty_dir,
    remove_file,
    remove_tree,
    write_json,
)

log = get_logger("model.export")

CHECKPOINT_NAMES = ("best_accuracy", "latest", "best_of_run")
# The exporter loads weights by name and only *warns* about a tensor whose shape differs
# (then keeps the random initial value): that is an exported model that reads garbage.
_SHAPE_MISMATCH = re.compile(r"not matched with loaded params|not in loaded params")


def _load_config(path: Path) -> Dict[str, Any]:
    """The run's config (the one engine-config reader), checked for what export needs."""
    config = load_engine_config(path, require=("Architecture",)).data
    model_type = config["Architecture"].get("model_type")
    if model_type != "rec":
        raise ConfigError(f"{path}: Architecture.model_type is {model_type!r}, not 'rec'.",
                          "rectrain exports text-recognition models only.")
    if config["Architecture"].get("algorithm") == "Distillation":
        raise ConfigError(f"{path}: Architecture.algorithm is Distillation; export of distillation "
                          "models (several sub-models) is not supported.",
                          "export the student model with its own (non-distillation) config.")
    return config


def _checkpoint_dirs(run_dir: Optional[Path], config: Dict[str, Any]) -> List[Path]:
    dirs: List[Path] = []
    if run_dir is not None:
        dirs.append(run_dir / "checkpoints")
    save_dir = (config.get("Global") or {}).get("save_model_dir")
    if save_dir:
        save_path = Path(save_dir)
        if not save_path.is_absolute() and run_dir is not None:
            save_path = run_dir / save_path
        dirs.append(save_path)
    return dirs


def _available(dirs: List[Path]) -> List[str]:
    names: Set[str] = set()
    for d in dirs:
        if d.is_dir():
            names.update(p.name[: -len(".pdparams")] for p in d.glob("*.pdparams"))
            names.update(p.parent.name for p in d.glob("*/*.pdparams"))
            names.update(name for name, _, _ in pointers(d / "snapshots"))
    return sorted(names)


def resolve_checkpoint(checkpoint: str, run_dir: Optional[Path], config: Dict[str, Any]) -> Path:
    """The checkpoint prefix (``<prefix>.pdparams`` exists) for a name in the run dir
    (best_accuracy, latest, best_of_run, iter_epoch_N) or a path prefix."""
    as_path = Path(checkpoint[: -len(".pdparams")] if checkpoint.endswith(".pdparams") else checkpoint)
    if as_path.with_name(as_path.name + ".pdparams").is_file():
        return as_path.resolve()
    dirs = _checkpoint_dirs(run_dir, config)
    if os.sep not in checkpoint and "/" not in checkpoint:
        for d in dirs:  # a named snapshot kept by `rectrain train` (snapshots/<name>.json)
            pointed = read_pointer(d / "snapshots", checkpoint)
            if pointed is not None:
                verify_snapshot(pointed[0])  # a file changed since it was sealed: refused by name
                prefix = engine_prefix(pointed[0])
                if prefix.with_name(prefix.name + ".pdparams").is_file():
                    return prefix.resolve()
        for d in dirs:
            # <dir>/<name>.pdparams, or a checkpoint kept in its own folder
            # (uniform_output_enabled: <dir>/<name>/<name>.pdparams; best_model/model.pdparams).
            for prefix in (d / checkpoint, d / checkpoint / checkpoint, d / checkpoint / "model"):
                if prefix.with_name(prefix.name + ".pdparams").is_file():
                    return prefix.resolve()
    names = _available(dirs)
    where = ", ".join(dict.fromkeys(str(d) for d in dirs)) or "(no run dir)"
    raise UserError(
        f"checkpoint {checkpoint!r} not found (looked for {checkpoint}.pdparams in {where}).",
        (f"use one of: {', '.join(names)}" if names else "train first, or pass --checkpoint "
         "with the path prefix of a .pdparams file") + ".")


def _resolve_dictionary(config: Dict[str, Any], config_path: Path, run_dir: Optional[Path],
                        engine: Engine) -> Optional[Path]:
    value = (config.get("Global") or {}).get("character_dict_path")
    if not value:
        return None
    path = Path(str(value)).expanduser()
    candidates = [path] if path.is_absolute() else [
        Path.cwd() / path, config_path.parent / path] + ([run_dir / path] if run_dir else []) + [
        engine.root / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise ConfigError(
        f"{config_path}: Global.character_dict_path {value} not found (looked in "
        f"{', '.join(str(c.parent) for c in candidates)}).",
        "make the path absolute, or run from the folder the training ran in.")


def _image_shape(config: Dict[str, Any]) -> Optional[List[int]]:
    for section in ("Eval", "Train"):
        transforms = (((config.get(section) or {}).get("dataset") or {}).get("transforms")) or []
        for op in transforms:
            if isinstance(op, dict):
                for name, params in op.items():
                    # RecResizeImg, SVTRRecResizeImg, ABINetRecResizeImg, ... (CHW). Not
                    # RecConAug, whose image_shape is HWC.
                    if ("ResizeImg" in str(name) and isinstance(params, dict)
                            and params.get("image_shape")):
                        return [int(v) for v in params["image_shape"]]
    return None


def _decode_settings(config: Dict[str, Any]) -> Dict[str, Any]:
    """How the Eval pipeline decodes images (the engine's DecodeImage defaults: RGB!)."""
    for section in ("Eval", "Train"):
        transforms = (((config.get(section) or {}).get("dataset") or {}).get("transforms")) or []
        for op in transforms:
            if isinstance(op, dict) and "DecodeImage" in op:
                params = op["DecodeImage"] or {}
                return {"img_mode": str(params.get("img_mode", "RGB")),
                        "ignore_orientation": bool(params.get("ignore_orientation", False))}
    return {"img_mode": "BGR", "ignore_orientation": False}


def _checkpoint_state(prefix: Path) -> Dict[str, Any]:
    """Epoch, step and metrics from ``<prefix>.states`` (the engine's own pickle), if any."""
    states_file = prefix.with_name(prefix.name + ".states")
    if not states_file.is_file():
        return {}
    try:
        states = read_states(states_file)  # the engine's save_model wrote it; the safe unpickler
    except Exception as exc:  # noqa: BLE001 - metadata only; the model is still exportable
        log.warning("could not read %s (%s); model.json will have no metrics.", states_file, exc)
        return {}
    if not isinstance(states, dict):
        return {}

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (bool, int, float, str)) or value is None:
            return value
        try:
            return float(value)
        except (TypeError, ValueError):
            return str(value)

    best = plain(states.get("best_model_dict") or {})
    result: Dict[str, Any] = {"epoch": plain(states.get("epoch")),
                              "global_step": plain(states.get("global_step"))}
    if best and "best_epoch" in best:  # without it no eval has run: only the engine's 0 default
        # For best_accuracy these are its own eval numbers; for latest / iter_epoch_N they are
        # the best eval of the run up to that point (the engine stores nothing else).
        best["source"] = f"{states_file.name}: best_model_dict"
        result["metrics"] = best
    return result


def _warn_if_run_has_a_better_best(prefix: Path, run_dir: Optional[Path],
                                   config: Dict[str, Any]) -> None:
    """After a resume the engine's best_accuracy can be worse than the run's best (its best
    metric restarts at 0); rectrain train keeps the best of the whole run as best_of_run."""
    try:
        other = resolve_checkpoint("best_of_run", run_dir, config)
    except UserError:
        return
    key = ((config.get("Metric") or {}).get("main_indicator")) or "acc"
    mine = (_checkpoint_state(prefix).get("metrics") or {}).get(key)
    theirs = (_checkpoint_state(other).get("metrics") or {}).get(key)
    if isinstance(mine, (int, float)) and isinstance(theirs, (int, float)) and theirs > mine:
        log.warning("best_accuracy (%s %.4f) is worse than the run's best_of_run (%s %.4f): the "
                    "engine resets its best after a resume. Export the best with "
                    "--checkpoint best_of_run.", key, mine, key, theirs)


def _paddle_version(engine: Engine) -> str:
    code = ("import importlib.metadata as m\n"
            "for n in ('paddlepaddle-gpu', 'paddlepaddle'):\n"
            "    try:\n        print(m.version(n)); break\n"
            "    except m.PackageNotFoundError:\n        pass\n")
    try:
        out = subprocess.run([engine.python, "-c", code], capture_output=True, text=True, timeout=60)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _major(version: str) -> int:
    match = re.match(r"(\d+)", version)
    return int(match.group(1)) if match else 0


def _run_exporter(engine: Engine, config_path: Path, overrides: Dict[str, object],
                  log_path: Path, failed_log: Path) -> str:
    # Export on the CPU: it takes seconds, gives the same weights, and never competes for GPU
    # memory with a training run on the same machine.
    argv, env = engine_command(engine, "export_model", str(config_path), overrides,
                               extra_env={"CUDA_VISIBLE_DEVICES": ""})
    # [python, -u, tools/export_model.py, ...] -> [python, -u, export_shim.py, tools/export_model.py, ...]
    script_at = argv.index(str(engine.script("export_model")))
    argv = argv[:script_at] + [str(Path(__file__).with_name("export_shim.py"))] + argv[script_at:]
    log.debug("command: %s", " ".join(argv))
    with open_stream(log_path, "w") as fh:
        proc = subprocess.run(argv, env=env, stdout=fh, stderr=subprocess.STDOUT)
    output = log_path.read_text(encoding="utf-8", errors="replace")
    if proc.returncode != 0:
        kept = _keep_log(log_path, failed_log)
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise EngineFailure(f"the engine's exporter failed (exit {proc.returncode}):\n{tail}",
                            f"read {kept}; check that the config matches the checkpoint.",
                            kind="export")
    return output


def _keep_log(log_path: Path, failed_log: Path) -> Path:
    """Keep the exporter's log where the user can read it after the temp folder is gone."""
    try:
        copy_file(log_path, failed_log)
        return failed_log
    except OSError:
        return log_path


def _make_readable(folder: Path) -> None:
    """mkdtemp/mkstemp create owner-only modes; a model folder is shared like any output."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for path in folder.iterdir():
        os.chmod(path, 0o666 & ~umask)


def _model_dir_files(folder: Path) -> Set[str]:
    """The names an exported model folder may hold: what its model.json says rectrain wrote."""
    try:
        info = json.loads((folder / MODEL_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    names = {MODEL_JSON, "config.yml", "export.log"} | set((info.get("files") or {}).keys())
    names |= set(info.get("written") or [])
    dict_file = (info.get("dictionary") or {}).get("file")
    if dict_file:
        names.add(str(dict_file))
    return names


def check_output_dir(out_dir: Path, overwrite: bool, inputs: Sequence[Tuple[str, Optional[Path]]]) -> None:
    """Before any work: the output folder must be new, empty, or (with ``overwrite``) a model
    folder rectrain exported before, holding nothing else and none of the inputs."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"-o {out_dir} is a file, not a folder.", "choose a folder path for the model.")
    if overwrite:
        check_replaceable_dir(out_dir, marker=MODEL_JSON, allowed=_model_dir_files(out_dir),
                              inputs=inputs, what="model folder")
    elif out_dir.is_dir() and any(out_dir.iterdir()):
        raise UserError(f"{out_dir} already exists and is not empty.",
                        "choose another -o folder, or pass --force to replace a model exported there before.")


def _place(tmp: Path, out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists():
        if out_dir.is_dir() and not any(out_dir.iterdir()):
            remove_empty_dir(out_dir)
        elif not overwrite:
            raise UserError(f"{out_dir} already exists and is not empty.",
                            "choose another -o folder, or pass --force to replace it.")
        else:
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            move(out_dir, old)
            move(tmp, out_dir)
            remove_tree(old, ignore_errors=True)
            return
    move(tmp, out_dir)


def _copy_dictionary(dict_path: Optional[Path], tmp: Path, use_space_char: bool) -> Dict[str, Any]:
    """Copy the dictionary into the model folder; model.json's ``dictionary``."""
    if dict_path is None:
        return {"file": None, "sha256": None, "source": None,
                "note": "engine built-in 0-9a-z (lower-cased), no file"}
    if (tmp / dict_path.name).exists() or dict_path.name in (MODEL_JSON, "config.yml"):
        raise ConfigError(f"the dictionary's file name {dict_path.name} clashes with a file "
                          "of the model folder.", "rename the dictionary (e.g. dict.txt).")
    copy_file(dict_path, tmp / dict_path.name)
    chars = dictionary_chars(dict_path, use_space_char)
    return {"file": dict_path.name, "sha256": sha256_file(dict_path),
            "source": str(dict_path), "lines": len(chars) - int(use_space_char),
            "classes": len(chars), "classes_with_ctc_blank": len(chars) + 1}


def _deploy(tmp: Path, cfg: Dict[str, Any], dict_path: Optional[Path], image_shape: List[int],
            onnx: bool, out: Path) -> Dict[str, Any]:
    """Make the folder load in PaddleOCR 3.x (and, with ``onnx``, write inference.onnx);
    model.json's ``deploy``."""
    arch = cfg["Architecture"]
    prog = program_file(tmp)
    assert prog is not None
    chars = dictionary_chars(dict_path, False) if dict_path is not None else None
    deploy: Dict[str, Any] = {"paddleocr3": make_deployable(
        tmp, algorithm=str(arch.get("algorithm")),
        postprocess=(cfg.get("PostProcess") or {}).get("name"), chars=chars,
        decode=_decode_settings(cfg),
        arabic_reversed=dict_path is not None and "arabic" in dict_path.name)}
    if arch.get("Head", {}).get("name") == "MultiHead":
        deploy["branch"] = "CTC (the engine exports MultiHead's CTC branch; NRTR/SAR train only)"
    breakers = onednn_breakers(prog)
    deploy["cpu_onednn"] = not breakers
    if breakers:
        deploy["cpu_onednn_why"] = (f"the program has {', '.join(breakers)}, which oneDNN in "
                                    "Paddle 3.3 cannot run; CPU inference runs without it")
    if onnx:
        log_path = out.with_name(out.name + ".onnx-failed.log")
        deploy["onnx"] = convert_to_onnx(tmp, prog, tmp / PARAMS_FILE, image_shape,
                                         str(arch.get("algorithm")) in FIXED_SHAPE, log_path)
        move(log_path, tmp / "onnx-export.log")
    return deploy


def _model_info(cfg: Dict[str, Any], tmp: Path, engine: Engine, paddle_version: str,
                image_shape: List[int], dictionary: Dict[str, Any],
                deploy: Dict[str, Any]) -> Dict[str, Any]:
    """model.json without the checkpoint, metrics and dataset parts."""
    prog = program_file(tmp)
    assert prog is not None
    arch = cfg["Architecture"]
    glob = cfg.get("Global") or {}
    return {
        "format": FORMAT,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "rectrain_version": __version__,
        "engine": {"kind": engine.kind, "version": engine.version},
        "paddle_version": paddle_version,
        "python": sys.version.split()[0],
        "model_format": "pir-json" if prog.suffix == ".json" else "pdmodel",
        "files": {p.name: sha256_file(p) for p in sorted(tmp.iterdir())
                  if p.name.startswith("inference.")},
        "algorithm": arch.get("algorithm"),
        "architecture": {k: (arch.get(k) or {}).get("name") for k in ("Transform", "Backbone",
                                                                       "Neck", "Head")},
        "postprocess": (cfg.get("PostProcess") or {}).get("name"),
        "rec_image_shape": image_shape,
        "decode": _decode_settings(cfg),
        "use_space_char": bool(glob.get("use_space_char", False)),
        "max_text_length": glob.get("max_text_length"),
        "dictionary": dictionary,
        "deploy": deploy,
    }


def export_model(run_dir: Optional[str] = None, *, checkpoint: str = "best",
                 config: Optional[str] = None, out_dir: str, paddleocr_dir: Optional[str] = None,
                 overwrite: bool = False, onnx: bool = False) -> Path:
    """Export ``checkpoint`` of a run to an inference model folder ``out_dir``; returns it.

    ``run_dir`` holds ``config.yml`` and ``checkpoints/``; ``config`` overrides the config
    file; ``checkpoint`` is a name in the run (best_accuracy, latest, best_of_run,
    iter_epoch_N) or a path prefix of ``.pdparams``. The default, ``best``, is the best model
    of the whole run: ``best_of_run`` (kept by ``rectrain train`` across resumes) when the run
    has one, else the engine's ``best_accuracy``. The folder loads in PaddleOCR 3.x as is
    (:mod:`rectrain.model.deploy`); ``onnx`` adds ``inference.onnx`` (paddle2onnx, checked with
    ONNX Runtime)."""
    run_path = Path(run_dir).resolve() if run_dir else None
    if run_path is not None and not run_path.is_dir():
        raise UserError(f"run dir {run_path} does not exist.", "pass the --run-dir of a training run.")
    if config:
        config_path = Path(config).resolve()
    elif run_path is not None:
        config_path = run_path / "config.yml"
    else:
        raise UserError("nothing to export: neither a run dir nor a config was given.",
                        "pass --run-dir DIR (or --config CFG with --checkpoint PATH_PREFIX).")
    cfg = _load_config(config_path)
    engine = find_engine(paddleocr_dir)
    if checkpoint == "best":
        try:
            prefix = resolve_checkpoint("best_of_run", run_path, cfg)
        except UserError:
            checkpoint = "best_accuracy"
    if checkpoint != "best":
        prefix = resolve_checkpoint(checkpoint, run_path, cfg)
    if checkpoint == "best_accuracy":
        _warn_if_run_has_a_better_best(prefix, run_path, cfg)
    dict_path = _resolve_dictionary(cfg, config_path, run_path, engine)
    glob = cfg.get("Global") or {}
    use_space_char = bool(glob.get("use_space_char", False))
    image_shape = _image_shape(cfg)
    if image_shape is None:
        raise ConfigError(f"{config_path}: no image_shape in the Eval (or Train) transforms, so "
                          "the inference input shape is unknown.",
                          "add RecResizeImg: {image_shape: [3, 48, 320]} to Eval.dataset.transforms.")

    out = Path(out_dir).resolve()
    check_output_dir(out, overwrite, [("run dir", run_path), ("config", config_path),
                                      ("checkpoint", Path(str(prefix) + ".pdparams")),
                                      ("dictionary", dict_path)])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=str(out.parent)))
    try:
        # the engine loads with plain pickle: it gets a re-pickled copy of the plain data
        # (a pulled or copied checkpoint may come from anyone who can write its prefix)
        safe = pickles.engine_copy(prefix, tmp / ".checkpoint", suffixes=(".pdparams", ".states"))
        overrides: Dict[str, object] = {
            "Global.checkpoints": str(safe),  # takes precedence over pretrained_model
            "Global.pretrained_model": str(safe),
            "Global.save_inference_dir": str(tmp),
        }
        if dict_path is not None:
            overrides["Global.character_dict_path"] = str(dict_path)
        paddle_version = _paddle_version(engine)
        if "export_with_pir" not in glob and _major(paddle_version) >= 3:
            # Paddle 3's own format. The engine's default (old IR under OldIrGuard) cannot
            # export PP-OCRv5 models (PPLCNetV3) on Paddle 3.3: "multiply(): argument must be
            # Value, but got Variable".
            overrides["Global.export_with_pir"] = True
        failed_log = out.with_name(out.name + ".export-failed.log")
        output = _run_exporter(engine, config_path, overrides, tmp / "export.log", failed_log)
        remove_tree(safe.parent)
        mismatch = [line for line in output.splitlines() if _SHAPE_MISMATCH.search(line)]
        if mismatch:
            _keep_log(tmp / "export.log", failed_log)
            raise UserError(
                f"checkpoint {prefix} does not fit the config {config_path}: the exporter "
                f"skipped weights ({mismatch[0].strip()[:300]}). Usually the dictionary has "
                "another number of lines than the one the checkpoint was trained with.",
                "export with the config and dictionary of the run that wrote this checkpoint.")
        if program_file(tmp) is None or not (tmp / PARAMS_FILE).is_file():
            raise EngineFailure(f"the exporter wrote no inference model into {tmp} "
                                f"(found: {', '.join(sorted(p.name for p in tmp.iterdir()))}).",
                                f"read {_keep_log(tmp / 'export.log', failed_log)}.", kind="export")
        copy_file(config_path, tmp / "config.yml")
        dictionary = _copy_dictionary(dict_path, tmp, use_space_char)
        deploy = _deploy(tmp, cfg, dict_path, image_shape, onnx, out)
        state = _checkpoint_state(prefix)
        info = _model_info(cfg, tmp, engine, paddle_version, image_shape, dictionary, deploy)
        info["checkpoint"] = {"name": checkpoint, "path": str(prefix), "epoch": state.get("epoch"),
                              "global_step": state.get("global_step")}
        info["metrics"] = state.get("metrics")
        info["dataset"] = dataset_card(cfg, config_path, run_path)
        info["written"] = sorted({p.name for p in tmp.iterdir()} | {MODEL_JSON})  # what --force may replace
        write_json(tmp / MODEL_JSON, info)
        _make_readable(tmp)
        _place(tmp, out, overwrite)
        for stale in (failed_log, out.with_name(out.name + ".onnx-failed.log")):
            remove_file(stale)  # from an earlier attempt
    except BaseException:
        remove_tree(tmp, ignore_errors=True)
        raise
    log.debug("exported %s -> %s (%s, dictionary %s classes)", prefix, out, info["model_format"],
             dictionary.get("classes", "built-in"))
    return out
