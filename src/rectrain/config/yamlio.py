"""Reading and writing PaddleOCR YAML configs.

PyPI's PyYAML expands anchors and aliases on load, so after loading, ``max_text_length``
in ``Global`` and in the NRTR head are two independent values: the builder keeps them
consistent itself. Output is written with ``allow_unicode`` (Thai paths and comments stay
readable) and keys in their original order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import yaml

from rectrain.errors import ConfigError
from rectrain.fsutil import write_text_atomic


def load_yaml_text(text: str, source: str) -> Dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)}).",
                          "fix the YAML syntax at that line (indentation, a missing ':').") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a training config must be a YAML mapping with sections "
                          f"such as Global, Architecture, Train and Eval; got {type(data).__name__}.",
                          "pass a PaddleOCR recognition config (configs/rec/*.yml) or a preset "
                          "name from `rectrain config presets`.")
    return data


def load_yaml(path: Path) -> Dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found.",
                          "check the path, or pass a preset name from `rectrain config presets`."
                          ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text.", "save the config as UTF-8.") from exc
    return load_yaml_text(text, str(path))


class _Dumper(yaml.SafeDumper):
    """Never writes anchors/aliases: every value is spelled out where the engine reads it."""

    def ignore_aliases(self, data: Any) -> bool:  # noqa: ARG002
        return True


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    # short lists of scalars ([3, 48, 320]) read best in flow style, as in the official configs
    flow = len(data) <= 12 and all(isinstance(x, (int, float, str, bool)) or x is None
                                   for x in data) and all(not isinstance(x, str) or len(x) < 30
                                                          for x in data)
    if any(isinstance(x, str) and ("/" in x or "\\" in x) for x in data):
        flow = False  # file lists: one per line
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def dump_yaml(data: Dict[str, Any]) -> str:
    """Top-level sections separated by a blank line, as in the official configs."""
    parts = [yaml.dump({key: value}, Dumper=_Dumper, allow_unicode=True, sort_keys=False,
                       default_flow_style=False, width=100) for key, value in data.items()]
    return "\n".join(parts)


def write_yaml(path: Path, data: Dict[str, Any], header: str = "") -> None:
    write_text_atomic(path, header + dump_yaml(data))
