"""``--set Section.key=value`` overrides (values parsed as YAML, as the engine's ``-o`` does)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from rectrain.config.edit import Key, format_path, get_path
from rectrain.errors import ConfigError
from rectrain.yamlfile import parse_yaml

Override = Tuple[Tuple[Key, ...], Any]


def parse_overrides(items: Sequence[str], config: Dict[str, Any]) -> List[Override]:
    out: List[Override] = []
    for item in items:
        text = str(item)
        if "=" not in text:
            raise ConfigError(f"--set {text!r}: expected Section.key=value.",
                              "write e.g. --set Global.save_epoch_step=5.")
        key, raw = text.split("=", 1)
        parts: List[Key] = []
        for part in key.strip().split("."):
            if not part:
                raise ConfigError(f"--set {text!r}: empty name in {key!r}.",
                                  "write e.g. --set Train.loader.num_workers=2.")
            parts.append(int(part) if part.lstrip("-").isdigit() else part)
        if len(parts) < 2:
            raise ConfigError(f"--set {text!r}: name a field inside a section "
                              "(Section.key=value).", "write e.g. --set Global.epoch_num=10.")
        section = parts[0]
        if section not in config:
            raise ConfigError(
                f"--set {text!r}: {section!r} is not a section of this config (sections: "
                f"{', '.join(str(s) for s in config)}).",
                "use one of those sections; names are case-sensitive (Global, not global).")
        parent = get_path(config, parts[:-1], None)
        if not isinstance(parent, (dict, list)):
            raise ConfigError(
                f"--set {text!r}: {format_path(parts[:-1])} does not exist in this config.",
                "set an existing field or a new key of an existing section; list items are "
                "addressed by index (Train.dataset.transforms.2.RecResizeImg.image_shape=...).")
        try:
            value = parse_yaml(raw, f"--set {text!r}") if raw.strip() else None
        except ConfigError as exc:
            raise ConfigError(f"{exc.message}", "quote strings and write lists as [a, b].") from None
        out.append((tuple(parts), value))
    return out


# --set fields that others derive from act like the builder's option of the same meaning
OPTION_FIELDS = {
    "Global.max_text_length": "max_text_length",
    "Global.epoch_num": "epochs",
    "Train.loader.batch_size_per_card": "batch_size",
    "Train.sampler.first_bs": "batch_size",
    "Optimizer.lr.learning_rate": "lr",
    "Global.pretrained_model": "pretrained",
}


def take_options(sets: List[Override], options: Dict[str, Any],
                 sources: Optional[Dict[str, str]] = None) -> List[Override]:
    """Move each ``--set`` of an ``OPTION_FIELDS`` field into ``options`` where that option is
    not given (None); return the other overrides. ``sources`` gets ``option -> "--set KEY"``
    for each option taken, so that its checks name what the user wrote."""
    rest: List[Override] = []
    for path, value in sets:
        key = ".".join(str(p) for p in path)
        name = OPTION_FIELDS.get(key)
        if name is None or options[name] is not None or (name == "pretrained" and not value):
            rest.append((path, value))
            continue
        if sources is not None:
            sources[name] = f"--set {key}="
        if name == "pretrained":
            options[name] = str(value)
        elif name == "lr":
            options[name] = _number(key, value)
        else:
            options[name] = int(_number(key, value))
    return rest


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"--set {key}={value!r}: expected a number.",
                          f"write e.g. --set {key}=10.")
    return float(value)
