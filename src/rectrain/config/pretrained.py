"""Pretrained weights against the dictionary: PaddleOCR loads ``.pdparams`` key by key and
skips (with one warning line) every tensor whose shape differs, so a dictionary of another
size silently re-initializes the recognition head. We read the head's output size first.

``.pdparams`` files are pickles of numpy arrays; they are read with an unpickler that only
accepts numpy types (no Paddle import, no arbitrary code).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from rectrain.checkpoints.pdparams import expected_sizes, head_kinds, load_state
from rectrain.errors import ConfigError, UserError


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
    """``{"ctc"|"nrtr"|"sar": (state-dict key, output size)}`` read from a ``.pdparams`` file
    (layouts: :mod:`rectrain.checkpoints.pdparams`)."""
    try:
        state = load_state(path)
    except UserError as exc:
        raise ConfigError(exc.message, exc.fix) from None
    return {kind: (t.key, t.classes) for kind, t in head_kinds(state).items()}


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
        trained = size - {"ctc": 1, "nrtr": 5, "sar": 2}.get(kind, 1)
        msg = (f"Global.pretrained_model: the weights' head {key} has {size} outputs (a "
               f"dictionary of {trained} classes incl. the space if used), but "
               f"{dict_path} gives {n_classes} classes, i.e. {want} outputs. PaddleOCR would "
               "skip that tensor and silently re-initialize the head: the recognition layer "
               "starts from scratch.")
        fix = ("pass --dict with the exact dictionary the weights were trained with (for the "
               "official Thai model: the current ppocrv5_th_dict.txt, quirks and all); `rectrain "
               "data dict LABELS --base THAT_DICT -o NEW.txt` keeps its lines and order and "
               "appends what your labels need: then pass --dict NEW.txt --base-dict THAT_DICT "
               "and the head is grown (old classes kept). Check Global.use_space_char too (it "
               "adds one class). --allow-new-head trains a new head instead (the backbone and "
               "neck weights are still loaded).")
        if allow_new_head:
            return [msg + " (allowed by --allow-new-head)"]
        raise ConfigError(msg, fix)
    return []
