"""Pretrained weights against the dictionary: PaddleOCR loads ``.pdparams`` key by key and
skips (with one warning line) every tensor whose shape differs, so a dictionary of another
size silently re-initializes the recognition head. We read the head's output size first.

``.pdparams`` files are pickles of numpy arrays; they are read with an unpickler that only
accepts numpy types (no Paddle import, no arbitrary code).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from rectrain.errors import ConfigError

# state-dict key suffix -> which output it is
HEAD_KEYS = (
    ("ctc_head.fc.weight", "ctc"), ("ctc_head.fc2.weight", "ctc"),
    ("gtc_head.tgt_word_prj.weight", "nrtr"),
    ("head.fc.weight", "ctc"), ("head.fc2.weight", "ctc"),
)


class _NumpyOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] == "numpy" or (module, name) in (
                ("collections", "OrderedDict"), ("builtins", "dict"), ("builtins", "list")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def resolve_pretrained(value: str) -> Tuple[str, Optional[Path]]:
    """``(value for Global.pretrained_model, the .pdparams file or None for URLs)``."""
    text = str(value).strip()
    if text.startswith(("http://", "https://")):
        return text, None
    p = Path(text).expanduser()
    if p.is_dir():
        for name in ("best_accuracy.pdparams", "model.pdparams", "latest.pdparams"):
            if (p / name).is_file():
                p = p / name
                break
        else:
            raise ConfigError(f"--pretrained {text}: a folder without best_accuracy.pdparams, "
                              "model.pdparams or latest.pdparams.",
                              "pass the weights file itself (e.g. .../best_accuracy.pdparams).")
    candidates = [p] if p.suffix == ".pdparams" else [Path(str(p) + ".pdparams"), p]
    for c in candidates:
        if c.is_file() and c.suffix == ".pdparams":
            c = c.resolve()
            return str(c), c
    raise ConfigError(f"--pretrained {text}: no such weights file ({candidates[0]}).",
                      "pass an existing .pdparams file (official weights or a checkpoint such "
                      "as output/.../best_accuracy.pdparams).")


def head_sizes(path: Path) -> Dict[str, Tuple[str, int]]:
    """``{"ctc"|"nrtr": (state-dict key, output size)}`` read from a ``.pdparams`` file."""
    try:
        with open(path, "rb") as fh:
            state = _NumpyOnly(fh).load()
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
        raise ConfigError(f"--pretrained {path}: cannot read the weights ({exc}).",
                          "pass a .pdparams file written by PaddleOCR / paddle.save.") from None
    if not isinstance(state, dict):
        raise ConfigError(f"--pretrained {path}: not a state dict.",
                          "pass a .pdparams file written by PaddleOCR / paddle.save.")
    found: Dict[str, Tuple[str, int]] = {}
    for suffix, kind in HEAD_KEYS:
        if kind in found:
            continue
        for key, value in state.items():
            shape = getattr(value, "shape", None)
            if isinstance(key, str) and key.endswith(suffix) and shape and len(shape) == 2 \
                    and not key.startswith(("Teacher.", "Models.Teacher")):
                found[kind] = (key, int(shape[-1]))
                break
    return found


def expected_sizes(config: Dict[str, Any], n_classes: int) -> Dict[str, int]:
    """Head output sizes the engine will build (tools/train.py): CTC = classes + blank;
    the NRTR part of a MultiHead = CTC + 3 (<unk>, <s>, </s>)."""
    post = (config.get("PostProcess") or {}).get("name")
    if post not in ("CTCLabelDecode", "DistillationCTCLabelDecode"):
        return {}
    ctc = n_classes + 1
    out = {"ctc": ctc}
    losses: List[Any] = (config.get("Loss") or {}).get("loss_config_list") or []
    names = [next(iter(x)) for x in losses if isinstance(x, dict) and x]
    if any("NRTRLoss" in n for n in names):
        out["nrtr"] = ctc + 3
    return out


def check_head(config: Dict[str, Any], weights: Path, n_classes: int, dict_path: str,
               allow_new_head: bool) -> List[str]:
    """Raise when the weights' head does not fit the dictionary (unless allowed); warnings."""
    found = head_sizes(weights)
    expected = expected_sizes(config, n_classes)
    if not found or not expected:
        return [f"--pretrained {weights}: could not find a recognition head to compare with "
                "the dictionary; the engine will load the tensors whose shapes match."]
    for kind, (key, size) in found.items():
        want = expected.get(kind)
        if want is None or want == size:
            continue
        trained = size - 1 if kind == "ctc" else size - 4
        msg = (f"Global.pretrained_model: the weights' head {key} has {size} outputs (a "
               f"dictionary of {trained} classes incl. the space if used), but "
               f"{dict_path} gives {n_classes} classes, i.e. {want} outputs. PaddleOCR would "
               "skip that tensor and silently re-initialize the head: the recognition layer "
               "starts from scratch.")
        fix = ("pass --dict with the exact dictionary the weights were trained with (for the "
               "official Thai model: ppocrv5_th_dict.txt, quirks and all); `rectrain data dict "
               "LABELS --base THAT_DICT` keeps its lines and order and tells you whether your "
               "labels need more. Check Global.use_space_char too (it adds one class). If your "
               "labels need characters the weights lack, the head has to be trained anew: pass "
               "--allow-new-head (the backbone and neck weights are still loaded).")
        if allow_new_head:
            return [msg + " (allowed by --allow-new-head)"]
        raise ConfigError(msg, fix)
    return []
