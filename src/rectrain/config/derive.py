"""Fields that follow from others and must stay consistent (PyYAML expands anchors on load, so
``max_text_length`` and the batch size live in several independent places afterwards)."""

from __future__ import annotations

import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from rectrain.config.edit import Editor, get_path, walk
from rectrain.config.knowledge import ClassInfo
from rectrain.errors import ConfigError

Shape = Tuple[int, int, int]

# Operators whose image_shape is [H, W, C] rather than [C, H, W].
HWC_OPS = {"RecConAug"}
# Operators whose 2-value image_shape is [W, H] (a cv2/PIL size) and that read gray images.
WH_OPS = {"GrayRecResizeImg"}


def model_parts(arch: Dict[str, Any]) -> List[Tuple[Tuple[str, ...], Dict[str, Any]]]:
    """``(path, model)`` of the model(s) in Architecture (each sub-model of a distillation)."""
    models = arch.get("Models")
    if isinstance(models, dict):
        return [(("Architecture", "Models", str(k)), m) for k, m in models.items()
                if isinstance(m, dict)]
    return [(("Architecture",), arch)]


def set_everywhere(ed: Editor, key: str, value: Any, why: str,
                   sections: Sequence[str] = ("Global", "Architecture", "Loss", "PostProcess",
                                              "Train", "Eval")) -> None:
    """Set every ``key`` found under ``sections`` (anchored copies included) to ``value``."""
    for section in sections:
        node = ed.config.get(section)
        for path, k, _ in list(walk(node, (section,))):
            if k == key:
                ed.set(path, value, why)


def transforms(cfg: Dict[str, Any], mode: str) -> List[Tuple[int, str, Dict[str, Any]]]:
    """``(index, name, params)`` of the dataset operators of ``mode`` (params may be ``{}``)."""
    out = []
    for i, op in enumerate(get_path(cfg, (mode, "dataset", "transforms"), []) or []):
        if isinstance(op, dict) and len(op) == 1:
            name = next(iter(op))
            params = op[name] if isinstance(op[name], dict) else {}
            out.append((i, name, params))
    return out


def primary_shape(cfg: Dict[str, Any]) -> Optional[Shape]:
    """The model input shape ``(C, H, W)`` the base config evaluates with."""
    for mode in ("Eval", "Train"):
        for _, name, params in transforms(cfg, mode):
            shape = params.get("image_shape")
            if isinstance(shape, list) and len(shape) == 3 and name not in HWC_OPS:
                return int(shape[0]), int(shape[1]), int(shape[2])
            if isinstance(shape, list) and len(shape) == 2 and name in WH_OPS:
                return 1, int(shape[1]), int(shape[0])
    d2s = get_path(cfg, ("Global", "d2s_train_image_shape"))
    if isinstance(d2s, list) and len(d2s) == 3:
        return int(d2s[0]), int(d2s[1]), int(d2s[2])
    return None


def parse_shape(text: Any) -> Shape:
    if isinstance(text, (list, tuple)):
        parts = [str(p) for p in text]
    else:
        parts = str(text).replace("x", ",").split(",")
    try:
        c, h, w = (int(p.strip()) for p in parts)
    except ValueError:
        raise ConfigError(f"--image-shape {text!r}: expected C,H,W such as 3,48,320.",
                          "pass three integers: channels (3), height, width.") from None
    if c not in (1, 3) or h < 8 or w < 8:
        raise ConfigError(f"--image-shape {text!r}: channels must be 1 or 3 and height/width at "
                          "least 8 pixels.", "pass e.g. 3,32,100 or 3,48,320.")
    return c, h, w


def apply_image_shape(ed: Editor, shape: Shape, why: str) -> None:
    cfg = ed.config
    c, h, w = shape
    old = primary_shape(cfg)
    gray_ops = any(name in WH_OPS for mode in ("Train", "Eval")
                   for _, name, _ in transforms(cfg, mode))
    modes = {str(p.get("img_mode", "RGB")).upper() for mode in ("Train", "Eval")
             for _, name, p in transforms(cfg, mode) if name == "DecodeImage"}
    if c == 1 and not gray_ops and modes and modes <= {"BGR", "RGB"}:
        raise ConfigError(
            f"--image-shape {c},{h},{w}: this config decodes colour images (DecodeImage "
            f"img_mode {', '.join(sorted(modes))}) and its model reads 3 channels.",
            f"pass --image-shape 3,{h},{w}.")
    for mode in ("Train", "Eval"):
        for i, name, params in transforms(cfg, mode):
            cur = params.get("image_shape")
            if not isinstance(cur, list):
                continue
            path = (mode, "dataset", "transforms", i, name, "image_shape")
            if name in HWC_OPS:
                ed.set(path, [h, w, c], why + " (this operator takes H, W, C)")
            elif name in WH_OPS and len(cur) == 2:
                ed.set(path, [w, h], why + " (this operator takes W, H)")
            elif name in WH_OPS and len(cur) == 3:
                ed.set(path, [cur[0], h, w], why + " (gray: the channel count stays)")
            elif len(cur) == 4:  # SARRecResizeImg: C, H, min W, max W
                ed.set(path, [c, h, min(int(cur[2]), w), w], why + " (C, H, min W, max W)")
            elif len(cur) == 3:
                ed.set(path, [c, h, w], why)
            elif len(cur) == 2:
                ed.set(path, [h, w], why)
    sampler = get_path(cfg, ("Train", "sampler"))
    if isinstance(sampler, dict) and isinstance(sampler.get("scales"), list):
        factor = sampler.get("divided_factor") or [8, 16]
        fh = int(factor[1]) if len(factor) > 1 else 16
        base_h = old[1] if old else h
        scales = []
        for s in sampler["scales"]:
            if isinstance(s, list) and len(s) == 2:
                sh = max(fh, int(round(s[1] * h / base_h / fh)) * fh)
                pair = [w, sh]
                if pair not in scales:
                    scales.append(pair)
        if scales:
            ed.set(("Train", "sampler", "scales"), scales,
                   why + f"; multi-scale heights scaled from {base_h} to {h} (multiples of "
                   f"divided_factor {fh})")
    if isinstance(get_path(cfg, ("Global", "d2s_train_image_shape")), list):
        ed.set(("Global", "d2s_train_image_shape"), [c, h, w], why)
    for prefix, model in model_parts(cfg.get("Architecture") or {}):
        backbone = model.get("Backbone") if isinstance(model.get("Backbone"), dict) else None
        transform = model.get("Transform") if isinstance(model.get("Transform"), dict) else None
        if backbone is None or not isinstance(backbone.get("img_size"), list):
            continue
        if transform is not None and isinstance(transform.get("tps_outputsize"), list):
            continue  # the rectifier resamples to tps_outputsize: the backbone size stays
        old_size = list(backbone["img_size"])
        ed.set(prefix + ("Backbone", "img_size"), [h, w],
               why + " (the backbone's positional grid follows the input)")
        ocn = backbone.get("out_char_num")
        if isinstance(ocn, int) and len(old_size) == 2 and old_size[1]:
            new_ocn = max(1, int(round(ocn * w / old_size[1])))
            ed.set(prefix + ("Backbone", "out_char_num"), new_ocn,
                   f"output sequence length scales with the width ({old_size[1]} -> {w})")


def set_batch_size(ed: Editor, bs: int, why: str) -> None:
    cfg = ed.config
    ed.set(("Train", "loader", "batch_size_per_card"), bs, why)
    sampler = get_path(cfg, ("Train", "sampler"))
    if isinstance(sampler, dict) and "first_bs" in sampler:
        ed.set(("Train", "sampler", "first_bs"), bs,
               why + " (MultiScaleSampler takes its batch size from first_bs)")
    ed.set(("Eval", "loader", "batch_size_per_card"), bs, why + " (evaluation batch)")


def train_batch_size(cfg: Dict[str, Any]) -> int:
    sampler = get_path(cfg, ("Train", "sampler"))
    if isinstance(sampler, dict) and "first_bs" in sampler:
        return int(sampler["first_bs"])
    return int(get_path(cfg, ("Train", "loader", "batch_size_per_card"), 1))


def steps_per_epoch(cfg: Dict[str, Any], n_train: int, cards: int = 1) -> int:
    """Iterations per epoch as the engine's sampler will count them (one card by default)."""
    if n_train <= 0:
        return 0
    sampler = get_path(cfg, ("Train", "sampler"))
    if isinstance(sampler, dict) and sampler.get("name") == "MultiScaleSampler":
        return _multiscale_batches(sampler, n_train, cards)
    bs = int(get_path(cfg, ("Train", "loader", "batch_size_per_card"), 1))
    drop_last = bool(get_path(cfg, ("Train", "loader", "drop_last"), False))
    per_card = math.ceil(n_train / cards)
    return per_card // bs if drop_last else math.ceil(per_card / bs)


def _multiscale_batches(sampler: Dict[str, Any], n: int, cards: int) -> int:
    """Mirror of ``MultiScaleSampler.__init__``'s batch list (ppocr/data/multi_scale_sampler.py)."""
    scales = sampler.get("scales") or [[320, 48]]
    if isinstance(scales[0], list):
        widths = [s[0] for s in scales]
        heights = [s[1] for s in scales]
    else:
        widths = heights = list(scales)
    first_bs = int(sampler.get("first_bs", 128))
    fix_bs = bool(sampler.get("fix_bs", True))
    factor = sampler.get("divided_factor") or [8, 16]
    per_card = int(n / cards)
    if sampler.get("is_training", True):
        widths = [int((w // factor[0]) * factor[0]) for w in widths]
        heights = [int((h // factor[1]) * factor[1]) for h in heights]
        base = scales[0][0] * scales[0][1] * first_bs if isinstance(scales[0], list) \
            else scales[0] * scales[0] * first_bs
        sizes = [first_bs if fix_bs else int(max(1, base / max(1, h * w)))
                 for h, w in zip(heights, widths)]
    else:
        sizes = [first_bs]
    count = current = 0
    while current < per_card:
        for bsz in sizes:
            current += bsz
            count += 1
    return count


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def ctc_columns(cfg: Dict[str, Any]) -> Optional[Tuple[int, str]]:
    """Estimated CTC output length (time steps) for backbones whose downsampling is known:
    ``(columns, how)``, or None. CTC needs at least one column per label character (two for a
    repeated one)."""
    arch = cfg.get("Architecture") or {}
    if arch.get("algorithm") == "Distillation" or \
            (cfg.get("PostProcess") or {}).get("name") != "CTCLabelDecode":
        return None
    backbone: Dict[str, Any] = arch["Backbone"] if isinstance(arch.get("Backbone"), dict) else {}
    name = backbone.get("name")
    shape = primary_shape(cfg)
    transform: Dict[str, Any] = arch["Transform"] if isinstance(arch.get("Transform"), dict) \
        else {}
    width = shape[2] if shape else None
    if isinstance(transform.get("tps_outputsize"), list):
        width = int(transform["tps_outputsize"][1])
    if name == "SVTRNet":
        if backbone.get("last_stage", True) and isinstance(backbone.get("out_char_num"), int):
            return backbone["out_char_num"], "SVTRNet out_char_num"
        size = backbone.get("img_size")
        return (int(size[1]) // 4, "SVTRNet width / 4") if isinstance(size, list) else None
    if name in ("MobileNetV3", "ResNet") and width:
        return width // 4, f"{name}: input width {width} / 4"
    if name == "PPLCNetV3":
        return 40, "PPLCNetV3 pools training features to 40 columns"
    return None


# --- schedule: learning rate, decay epochs, warm-up, intervals -------------------------------

def set_learning_rate(ed: Editor, lr: float) -> None:
    """``--lr``: the schedule's base rate; a Piecewise schedule's values scale by the same
    factor; a plain number becomes a Const schedule."""
    opt_lr = get_path(ed.config, ("Optimizer", "lr"))
    if not isinstance(opt_lr, dict):
        ed.set(("Optimizer", "lr"), {"name": "Const", "learning_rate": float(lr)}, "--lr")
        return
    old = opt_lr.get("learning_rate")
    values = opt_lr.get("values")
    if old is not None or not isinstance(values, list):
        ed.set(("Optimizer", "lr", "learning_rate"), float(lr), "--lr")
    ref = old if isinstance(old, (int, float)) and old else (
        values[0] if isinstance(values, list) and values else None)
    if isinstance(values, list) and values and ref:
        ed.set(("Optimizer", "lr", "values"), [v * float(lr) / ref for v in values],
               "--lr: piecewise values scaled by the same factor")


def scale_piecewise(ed: Editor, lr: Dict[str, Any], base_epochs: int, epochs: int) -> None:
    """Piecewise decay: one more value than decay epochs (Paddle refuses otherwise, at start),
    and decay epochs inside the run when --epochs shortens it."""
    if lr.get("name") != "Piecewise":
        return
    decay, values = lr.get("decay_epochs"), lr.get("values")
    if not isinstance(decay, list) or not isinstance(values, list):
        raise ConfigError("Optimizer.lr: Piecewise needs decay_epochs and values lists.",
                          "set e.g. decay_epochs: [6, 8] and values: [0.001, 0.0001, 0.00001].")
    if len(values) != len(decay) + 1:
        example = list(values[: len(decay) + 1])
        while len(example) < len(decay) + 1:
            example.append((example[-1] if example else 0.001) * 0.1)
        shown = ", ".join(f"{v:g}" for v in example)
        raise ConfigError(
            f"Optimizer.lr.values has {len(values)} value(s) for {len(decay)} decay epoch(s) "
            f"{decay}; Paddle's PiecewiseDecay needs one value per interval, i.e. "
            f"{len(decay) + 1}, and stops at start otherwise.",
            f"--set 'Optimizer.lr.values=[{shown}]' (or drop a decay epoch).")
    if epochs != base_epochs and decay and max(decay) <= base_epochs:
        new: List[int] = []
        for e in decay:
            v = max(1, int(round(e * epochs / base_epochs)))
            new.append(max(v, new[-1] + 1) if new else v)
        if new != decay:
            ed.set(("Optimizer", "lr", "decay_epochs"), new,
                   f"decays at the same fraction of the run ({base_epochs} -> {epochs} epochs)")


def shorten_warmup(ed: Editor, lr: Dict[str, Any], epochs: int) -> None:
    """A warm-up not shorter than the run would never reach the target rate: 10% of the run."""
    warm = lr.get("warmup_epoch")
    if isinstance(warm, (int, float)) and warm and warm >= epochs:
        ed.set(("Optimizer", "lr", "warmup_epoch"), round(epochs * 0.1, 2),
               f"a {warm}-epoch warm-up is not shorter than the whole run ({epochs} "
               f"epoch{'s' if epochs != 1 else ''}): the learning rate would never "
               "reach its target; 10% of the run")


def set_intervals(ed: Editor, steps: int, epochs: int) -> None:
    """Evaluate at least once per epoch (so that best_accuracy is saved), log twice."""
    g = ed.config["Global"]
    total = steps * epochs
    if g.get("eval_batch_epoch") is None:
        cur = g.get("eval_batch_step")
        if isinstance(cur, list) and len(cur) >= 2:
            start, every = int(cur[0]), int(cur[1])
        else:
            start, every = 0, int(cur or 2000)
        new_every = max(1, min(every, steps))
        new_start = start if start < total else 0
        if [new_start, new_every] != cur:
            ed.set(("Global", "eval_batch_step"), [new_start, new_every],
                   f"{steps} steps per epoch on 1 card ({total} in all): evaluate at least once "
                   "per epoch so that best_accuracy is saved")
        if new_every < every:
            ed.set(("Global", "eval_batch_epoch"), 1,
                   "the engine then derives the interval from the real steps per epoch, which "
                   "shrink with the number of cards")
    pbs = g.get("print_batch_step")
    if isinstance(pbs, int) and pbs > max(1, steps // 2):
        ed.set(("Global", "print_batch_step"), max(1, steps // 2),
               f"log at least twice per epoch ({steps} steps per epoch)")


# --- text length and classes ------------------------------------------------------------------

def set_head_lengths(ed: Editor, classes: Dict[Tuple[str, str], ClassInfo], mtl: int) -> None:
    """A head that decodes up to a maximum length it takes as a parameter (NRTR's Transformer
    ``max_len``, ABINet/VisionLAN ``max_length``) but that the config leaves at its default:
    set it, or inference stops at the default length. ``classes``: the engine's
    ``(kind, name) -> ClassInfo``."""
    for prefix, model in model_parts(ed.config["Architecture"]):
        head = model.get("Head")
        if not isinstance(head, dict) or head.get("name") in (None, "MultiHead"):
            continue
        info = classes.get(("head", head["name"]))
        if info is None or not info.params:
            continue
        for alias in ("max_text_length", "max_length", "max_len"):
            if alias in info.params and alias not in head:
                ed.set(prefix + ("Head", alias), mtl,
                       f"{head['name']} decodes at most {alias} tokens (its default is shorter "
                       "than the new max_text_length)")
                break


def fix_ignore_index(ed: Editor, n_classes: int) -> None:
    """CE-style losses take a fixed ``ignore_index`` (ABINet: 100, 'must be greater than the
    number of character classes'); a larger dictionary turns a real class into padding."""
    cfg = ed.config
    # only where ignore_index is a padding id above the classes; elsewhere 0 (NRTR) or the
    # engine's own value (SAR, SATRN) is meant
    if (cfg.get("PostProcess") or {}).get("name") not in ("ABINetLabelDecode",
                                                           "CPPDLabelDecode"):
        return
    need = n_classes + 4  # classes + blank/sos/eos/unk at most
    hits = [(path, value) for section in ("Loss", "Train", "Eval")
            for path, key, value in walk(cfg.get(section), (section,))
            if key == "ignore_index" and isinstance(value, int) and 1 <= value < need]
    if not hits:
        return
    new = ((need // 100) + 1) * 100
    for path, value in hits:
        ed.set(path, new, f"ignore_index {value} would be a real class with {n_classes} "
                          "dictionary classes; it must be greater than the number of classes")
