"""Before the engine starts: the pretrained weights' head against the config's dictionary.

PaddleOCR loads ``Global.pretrained_model`` tensor by tensor and skips, with one warning line,
every tensor whose shape differs: a dictionary of another size silently re-initialises the
recognition head and fine-tuning starts from scratch (PaddleOCR issues #4357, #10666, #5655).
``rectrain train`` refuses that with the two sizes and the fix; the stale official Thai
dictionary is refused as well.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

from rectrain.checkpoints.pdparams import expected_sizes, head_kinds, load_state
from rectrain.data.dictionary import read_dictionary
from rectrain.data.official_dicts import check_official
from rectrain.errors import ConfigError


def _weights(value: Any) -> Optional[Path]:
    if not value or str(value).startswith(("http://", "https://")):
        return None
    p = Path(str(value)).expanduser()
    for c in (p, Path(str(p) + ".pdparams")):
        if c.is_file() and c.suffix == ".pdparams":
            return c
    return None  # a missing file is the engine's (and config check's) error


def check_pretrained_head(config: Dict[str, Any], source: str = "config") -> None:
    """Raise ConfigError (exit 2) when ``Global.pretrained_model`` does not fit the dictionary."""
    g = config.get("Global") or {}
    weights = _weights(g.get("pretrained_model"))
    dict_path = g.get("character_dict_path")
    if weights is None or not dict_path or not Path(str(dict_path)).is_file():
        return
    check_official(str(dict_path), pretrained=True)
    dictionary = read_dictionary(str(dict_path), use_space_char=bool(g.get("use_space_char")))
    expected = expected_sizes(config, len(dictionary.chars))
    for kind, t in head_kinds(load_state(weights, "Global.pretrained_model")).items():
        want = expected.get(kind)
        if want is None or want == t.classes:
            continue
        raise ConfigError(
            f"{source}: Global.pretrained_model {weights}: {t.key} has {t.classes} outputs, but "
            f"the dictionary {dict_path} (use_space_char {bool(g.get('use_space_char'))}) gives "
            f"{want}. PaddleOCR would skip that tensor and silently re-initialize the head, so "
            "training would start from scratch.",
            "pass the dictionary the weights were trained with; to add characters, rebuild the "
            "config with `rectrain config build --pretrained W --dict NEW --base-dict OLD` (the "
            "head is grown, old classes kept), or grow the weights with `rectrain ckpt "
            "extend-dict`.")
