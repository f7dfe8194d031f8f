"""Checks of the builder's options and of a training config: what the engine would refuse
only with a stack trace, or not at all (zero steps, an infinite CTC loss), as a ConfigError
naming the field and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Union

from rectrain.config import derive
from rectrain.config.edit import get_path
from rectrain.config.knowledge import engine_knowledge
from rectrain.config.modules import check_modules, refuse_v1, require_sections
from rectrain.data.configfiles import check_config_files
from rectrain.engine import find_engine
from rectrain.errors import ConfigError

PathLike = Union[str, Path]


def check_options(*, device: str, amp: bool, epochs: Optional[int], batch_size: Optional[int],
                  max_text_length: Optional[int], lr: Optional[float],
                  flags: Optional[Dict[str, str]] = None) -> None:
    """The builder's options on their own, before anything is read. ``flags``: option name ->
    what the user wrote instead of the flag (``--set Global.epoch_num=``), for the message."""
    flags = flags or {}
    if device not in ("gpu", "cpu"):
        raise ConfigError(f"--device {device!r}: expected gpu or cpu.", "pass --device gpu or cpu.")
    if amp and device == "cpu":
        raise ConfigError("--amp with --device cpu: mixed precision (float16) needs a GPU.",
                          "drop --amp for CPU training, or use --device gpu.")
    for opt, name, value in (("epochs", "--epochs", epochs), ("batch_size", "--batch-size", batch_size),
                             ("max_text_length", "--max-text-length", max_text_length)):
        if value is not None and int(value) < 1:
            shown = f"{flags[opt]}{value}" if opt in flags else f"{name} {value}"
            raise ConfigError(f"{shown}: must be at least 1.",
                              f"pass a positive value ({name} N or {flags[opt]}N)." if opt in flags
                              else f"pass a positive {name}.")
    if lr is not None and not float(lr) > 0:
        shown = f"{flags['lr']}{lr}" if "lr" in flags else f"--lr {lr}"
        raise ConfigError(f"{shown}: must be positive (the learning rate).", "pass e.g. --lr 0.0005.")


def check_training_config(config: Dict[str, Any], *, source: str = "config",
                          paddleocr_dir: Optional[PathLike] = None) -> None:
    """The structural checks of the builder on an existing config dict (e.g. before a
    training job): PaddleOCR 1.x, sections, modules the engine knows, shapes, files."""
    refuse_v1(config, source)
    require_sections(config, source)
    check_values(config)
    engine = find_engine(str(paddleocr_dir) if paddleocr_dir else None)
    check_modules(config, engine_knowledge(engine))
    check_shapes(config)
    check_files(config)


def check_values(cfg: Dict[str, Any]) -> None:
    """The fields the builder's options set, in a written config: the same rules."""
    for path, rule in ((("Global", "epoch_num"), "int"), (("Global", "max_text_length"), "int"),
                       (("Train", "loader", "batch_size_per_card"), "int"),
                       (("Eval", "loader", "batch_size_per_card"), "int"),
                       (("Optimizer", "lr", "learning_rate"), "lr")):
        value = get_path(cfg, path, None)
        if value is None:
            continue
        field = ".".join(path)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{field}: {value!r} is not a number.", f"set {field} to a number.")
        if rule == "int" and (value < 1 or int(value) != value):
            raise ConfigError(f"{field}: {value!r} must be a whole number of at least 1.",
                              f"set {field} to a positive whole number.")
        if rule == "lr" and not value > 0:
            raise ConfigError(f"{field}: {value!r}: the learning rate must be positive.",
                              f"set {field} to e.g. 0.0005.")


def check_shapes(cfg: Dict[str, Any]) -> None:
    """Shape rules that the engine would only report with a stack trace."""
    shape = derive.primary_shape(cfg)
    for prefix, model in derive.model_parts(cfg["Architecture"]):
        where = ".".join(prefix)
        backbone = model.get("Backbone")
        transform = model.get("Transform")
        if not isinstance(backbone, dict) or not isinstance(backbone.get("img_size"), list):
            continue
        size = list(backbone["img_size"])
        if isinstance(transform, dict) and isinstance(transform.get("tps_outputsize"), list):
            if list(transform["tps_outputsize"]) != size:
                raise ConfigError(
                    f"{where}.Backbone.img_size {size} differs from {where}.Transform."
                    f"tps_outputsize {transform['tps_outputsize']}: the backbone receives the "
                    "rectified image.", "set both to the same [H, W] (e.g. with --set).")
        elif shape and len(size) == 2 and size != [shape[1], shape[2]]:
            raise ConfigError(
                f"{where}.Backbone.img_size {size} differs from the input image size "
                f"{[shape[1], shape[2]]} of the resize operators.",
                "pass --image-shape C,H,W so that both follow, or fix img_size with --set.")


def check_files(cfg: Dict[str, Any]) -> None:
    """Every dictionary, data folder, label file and weights file the config names exists and
    is what it claims (rectrain.data.configfiles, shared with ``rectrain train``)."""
    check_config_files(cfg)


def count_lines(path: str) -> int:
    """Samples of a label file when its lines are not read (``check_data=False``)."""
    with open(path, "rb") as fh:
        return sum(1 for _ in fh)


def check_batch_fits(cfg: Dict[str, Any], n_train: int) -> None:
    """A batch larger than the data with ``drop_last``: the engine would run zero steps."""
    bs = derive.train_batch_size(cfg)
    sampler = get_path(cfg, ("Train", "sampler"))
    if n_train and get_path(cfg, ("Train", "loader", "drop_last")) and not sampler \
            and n_train < bs:
        raise ConfigError(
            f"Train.loader.batch_size_per_card: {bs} is larger than the {n_train} training "
            "samples and drop_last is true: the engine would run zero steps.",
            f"pass --batch-size {max(1, min(n_train, 2 ** (n_train.bit_length() - 1)))} or "
            "more data.")


def ctc_length_warning(cfg: Dict[str, Any], mtl: int, longest: int) -> Optional[str]:
    """A warning when CTC has fewer output columns than the longest label may need."""
    cols = derive.ctc_columns(cfg)
    if cols is None or max(longest, mtl) <= cols[0]:
        return None
    return (f"CTC output length: about {cols[0]} columns ({cols[1]}), but max_text_length is "
            f"{mtl}" + (f" and the longest label has {longest} characters" if longest else "")
            + "; CTC needs a column per character (two for a repeated one), so longer "
            "labels give an infinite loss. Fix: a wider --image-shape, or a smaller "
            "--max-text-length.")
