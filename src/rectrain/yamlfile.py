"""The one strict YAML reader: every training config, job config and inline YAML value rectrain
reads is parsed here (``tests/test_architecture_gateway.py`` fails on a YAML parse elsewhere).

PyYAML alone is kinder than it should be, and each kindness trains the wrong model:

- a key given twice keeps the last value silently (a second ``learning_rate: 5.0``): refused,
  naming both lines;
- an alias is the *same* object as its anchor, so ``Eval: dataset: *ds`` makes Eval and Train
  share one dict, and a change to one is a change to the other: aliases are expanded into
  independent copies; an alias "bomb" (a few lines expanding to billions of nodes) is refused;
- a tab in the indentation gives a parser message about "found character '\\t'": named with its
  line and the fix;
- Python tags (``!!python/object``) are refused (safe loading), naming the line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Union

import yaml

from rectrain.errors import ConfigError
from rectrain.outputs import refuse_special

MAX_NODES = 200_000  # a training config has a few hundred; an alias bomb billions


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (both lines named)."""

    source = "YAML"

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Dict[Any, Any]:
        seen: Dict[Any, int] = {}
        for key_node, _value in node.value:
            try:
                key = self.construct_object(key_node, deep=True)
                hash(key)
            except TypeError:
                continue  # SafeLoader's own error for an unhashable key follows
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"{self.source}: the key {key!r} is given twice, on lines {seen[key]} and {line} "
                    "(YAML would keep the second one silently).",
                    f"keep one {key!r} (delete the other line), then run the command again.")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node, memo: Dict[int, int]) -> int:
    """How many nodes ``node`` stands for once every alias is expanded (a DAG: memoized)."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a cycle (a recursive alias) counts once; construction refuses it later
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(n, memo) for n in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else:
        size = 1
    memo[key] = size
    return size


def _unshare(value: Any) -> Any:
    """The same data with no object shared between two places (aliases become copies)."""
    if isinstance(value, dict):
        return {k: _unshare(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unshare(v) for v in value]
    return value


def _tab_line(text: str) -> Optional[int]:
    for number, line in enumerate(text.splitlines(), 1):
        indent = line[:len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent and line.strip() and not line.lstrip().startswith("#"):
            return number
    return None


def parse_yaml(text: str, source: str) -> Any:
    """The data in ``text`` (from ``source``, named in every message), strictly: see the module
    docstring. Raises :class:`~rectrain.errors.ConfigError` (exit 2) with the line and the fix."""
    tab = _tab_line(text)
    if tab is not None:
        raise ConfigError(f"{source}: line {tab} is indented with a tab (\\t); YAML indents with "
                          "spaces only.", f"replace the tab on line {tab} with spaces.")
    loader = _StrictLoader(text)
    loader.source = source
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_NODES:
            raise ConfigError(f"{source}: its anchors and aliases expand to more than {MAX_NODES} "
                              "values (an alias bomb).",
                              "write the values out instead of nesting aliases of aliases.")
        return _unshare(loader.construct_document(node))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        if "python/" in str(exc):
            raise ConfigError(f"{where}: a Python tag ({problem}); rectrain reads plain YAML only.",
                              "remove the !!python tag and write the plain value.") from None
        raise ConfigError(f"{where}: not valid YAML ({problem}).",
                          "fix the YAML syntax at that line (indentation, a missing ':').") from None
    finally:
        loader.dispose()


def read_yaml(path: Union[str, Path], *, what: str = "YAML file") -> Any:
    """The data of the YAML file ``path`` (UTF-8, a regular file), strictly (:func:`parse_yaml`)."""
    p = Path(path).expanduser()
    refuse_special(p, what=what)
    if not p.is_file():
        raise ConfigError(f"{p}: {what} not found.", "check the path.")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (a binary file, or another encoding), so not a "
                          f"{what}.", "save it as UTF-8 (or pass the right file).") from exc
    return parse_yaml(text, str(p))
