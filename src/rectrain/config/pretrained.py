"""Pretrained weights against the dictionary, checked in one place: PaddleOCR loads
``.pdparams`` key by key and skips (with one warning line) every tensor whose shape differs, so
a dictionary of another size silently re-initializes the recognition head and fine-tuning
starts from scratch (PaddleOCR issues #4357, #10666, #5655). We read the head's output size
first: :func:`head_mismatch` is the one comparison; ``config build --pretrained`` asks it
through :func:`check_head` (its fix names the build's flags), ``rectrain train`` through
:func:`check_pretrained_head` (a config built elsewhere; the stale official Thai dictionary is
refused as well).

``.pdparams`` files are pickles of numpy arrays; they are read with rectrain's one safe
unpickler (:mod:`rectrain.checkpoints.pickles`: numpy types only, no Paddle import).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from rectrain.checkpoints.pdparams import expected_sizes, head_kinds, load_state
from rectrain.data.dictionary import read_dictionary
from rectrain.data.official_dicts import check_official
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


def head_mismatch(config: Dict[str, Any], found: Dict[str, Tuple[str, int]],
                  n_classes: int) -> Optional[Tuple[str, str, int, int]]:
    """``(kind, key, size, want)`` of the first head tensor of ``found`` (:func:`head_sizes`)
    whose output size is not what the engine builds for ``n_classes`` dictionary classes; None
    when every head fits (or the decoder has no class-indexed head to compare)."""
    expected = expected_sizes(config, n_classes)
    for kind, (key, size) in found.items():
        want = expected.get(kind)
        if want is not None and want != size:
            return kind, key, size, want
    return None


def check_head(config: Dict[str, Any], weights: Path, n_classes: int, dict_path: str,
               allow_new_head: bool) -> List[str]:
    """``config build --pretrained``: raise when the weights' head does not fit the dictionary
    (unless allowed); warnings."""
    found = head_sizes(weights)
    if not found or not expected_sizes(config, n_classes):
        return [f"--pretrained {weights}: could not find a recognition head to compare with "
                "the dictionary; the engine will load the tensors whose shapes match."]
    mismatch = head_mismatch(config, found, n_classes)
    if mismatch is not None:
        kind, key, size, want = mismatch
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


def _train_weights(value: Any) -> Optional[Path]:
    """The ``.pdparams`` file ``Global.pretrained_model`` names (None: a URL or no file, which
    the engine and ``config check`` report)."""
    if not value or str(value).startswith(("http://", "https://")):
        return None
    p = Path(str(value)).expanduser()
    for c in (p, Path(str(p) + ".pdparams")):
        if c.is_file() and c.suffix == ".pdparams":
            return c
    return None


def check_pretrained_head(config: Dict[str, Any], source: str = "config") -> None:
    """``rectrain train``: raise ConfigError (exit 2) when ``Global.pretrained_model`` does not
    fit the config's dictionary, before the engine starts."""
    g = config.get("Global") or {}
    weights = _train_weights(g.get("pretrained_model"))
    dict_path = g.get("character_dict_path")
    if weights is None or not dict_path or not Path(str(dict_path)).is_file():
        return
    check_official(str(dict_path), pretrained=True)
    dictionary = read_dictionary(str(dict_path), use_space_char=bool(g.get("use_space_char")))
    found = {kind: (t.key, t.classes)
             for kind, t in head_kinds(load_state(weights, "Global.pretrained_model")).items()}
    mismatch = head_mismatch(config, found, len(dictionary.chars))
    if mismatch is None:
        return
    _, key, size, want = mismatch
    raise ConfigError(
        f"{source}: Global.pretrained_model {weights}: {key} has {size} outputs, but "
        f"the dictionary {dict_path} (use_space_char {bool(g.get('use_space_char'))}) gives "
        f"{want}. PaddleOCR would skip that tensor and silently re-initialize the head, so "
        "training would start from scratch.",
        "pass the dictionary the weights were trained with; to add characters, rebuild the "
        "config with `rectrain config build --pretrained W --dict NEW --base-dict OLD` (the "
        "head is grown, old classes kept), or grow the weights with `rectrain ckpt "
        "extend-dict`.")
