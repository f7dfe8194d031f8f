"""Writing PaddleOCR YAML configs (reading them is :mod:`rectrain.engine.config`'s, the one
reader).

Output is written with ``allow_unicode`` (Thai paths and comments stay readable) and keys in
their original order; never with anchors or aliases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import yaml

from rectrain.outputs import write_text


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
    write_text(path, header + dump_yaml(data))
