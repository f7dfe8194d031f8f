"""``config build --pretrained P --dict NEW`` where NEW is the weights' dictionary with
characters appended: grow the head (``rectrain.checkpoints.extend_dict``) and point the config
at the grown weights, written beside the config, instead of refusing or letting the engine
re-initialise the head.

The weights' dictionary is ``--base-dict`` when given; otherwise NEW's first lines, when they
are an official dictionary recognised by content (e.g. the current ppocrv5_th_dict.txt).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple, Union

from rectrain.checkpoints.extend_dict import appended_lines, grow_weights
from rectrain.checkpoints.pdparams import ctc_classes_of, load_state
from rectrain.data.dictionary import Dictionary, read_dictionary
from rectrain.data.official_dicts import identify_lines
from rectrain.errors import ConfigError

PathLike = Union[str, Path]


def grown_path(out_path: Path) -> Path:
    stem = out_path.name
    for ext in (".yml", ".yaml"):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
    return out_path.with_name(stem + ".grown.pdparams")


def maybe_grow(weights: Path, dictionary: Dictionary, dict_path: str, out_path: Path,
               base_dict: Optional[PathLike], allow_new_head: bool = False) -> Tuple[Path, List[str]]:
    """``(weights to use, notes)``: ``weights`` itself unless the dictionary grew.
    ``allow_new_head`` without ``base_dict``: the user chose a new head, nothing is grown."""
    if allow_new_head and base_dict is None:
        return weights, []
    found = ctc_classes_of(load_state(weights))
    want = len(dictionary.chars) + 1
    space = 1 if dictionary.use_space_char else 0
    if found is None or found >= want:
        return weights, []
    lines = dictionary.chars[: len(dictionary.chars) - space]
    old_n = found - 1 - space
    if base_dict is not None:
        added = appended_lines(base_dict, dict_path)
        old = read_dictionary(base_dict).chars
        if len(old) != old_n:
            raise ConfigError(
                f"--base-dict {base_dict} has {len(old)} lines, but the weights {weights} have "
                f"{found} CTC outputs, i.e. {old_n} lines (use_space_char "
                f"{'on' if space else 'off'}).",
                "pass the dictionary the weights were trained with as --base-dict.")
        base_name = str(base_dict)
    else:
        official = identify_lines(lines[:old_n]) if 0 < old_n < len(lines) else None
        if official is None or official.status == "stale":
            raise ConfigError(
                f"Global.pretrained_model: the weights' CTC head has {found} outputs, but "
                f"{dict_path} gives {len(dictionary.chars)} classes, i.e. {want} outputs, and its "
                f"first {old_n} lines are no dictionary rectrain knows. PaddleOCR would skip the "
                "head and silently re-initialize it.",
                "if --dict is the weights' dictionary with characters appended, pass that "
                "dictionary as --base-dict: the head is grown for you (old classes kept); "
                "otherwise pass the dictionary the weights were trained with.")
        old, added, base_name = lines[:old_n], lines[old_n:], official.describe()
    out = grown_path(out_path)
    report = grow_weights(weights, out, old, added, use_space_char=bool(space),
                          base_name=base_name)
    note = (f"--pretrained {weights}: the dictionary adds {len(added)} character(s) to the "
            f"weights' {len(old)} lines ({base_name}); the head was grown (old classes kept, new "
            f"rows = the mean of the old characters' rows) and written to {out}.")
    return report.out, [note]
