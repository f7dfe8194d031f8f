"""Recording edits of a config: every change is (field, old, new, why)."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, NamedTuple, Sequence, Tuple, Union

from rectrain.errors import ConfigError

Key = Union[str, int]
MISSING = object()


class Change(NamedTuple):
    field: str
    old: Any
    new: Any
    why: str


def format_path(path: Sequence[Key]) -> str:
    out = ""
    for key in path:
        if isinstance(key, int):
            out += f"[{key}]"
        else:
            out += ("." if out else "") + str(key)
    return out


def get_path(cfg: Any, path: Sequence[Key], default: Any = None) -> Any:
    cur = cfg
    for key in path:
        in_list = isinstance(key, int) and isinstance(cur, list) and -len(cur) <= key < len(cur)
        if in_list or (isinstance(cur, dict) and key in cur):
            cur = cur[key]
        else:
            return default
    return cur


def walk(node: Any, path: Tuple[Key, ...] = ()) -> Iterator[Tuple[Tuple[Key, ...], Any, Any]]:
    """Yield ``(path, key, value)`` for every mapping entry under ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path + (key,), key, value
            yield from walk(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, path + (i,))


class Editor:
    """Applies changes to a config dict and keeps the list of what changed and why."""

    def __init__(self, config: Dict[str, Any]) -> None:
        self.config = config
        self.changes: List[Change] = []

    def set(self, path: Sequence[Key], value: Any, why: str, *, create: bool = True) -> None:
        parent = get_path(self.config, path[:-1], MISSING)
        if parent is MISSING or not isinstance(parent, (dict, list)):
            raise ConfigError(f"{format_path(path)}: {format_path(path[:-1]) or 'the config'} "
                              "is not a section of this config.",
                              "check the field name against the base config.")
        last = path[-1]
        if isinstance(parent, list):
            if not isinstance(last, int) or not -len(parent) <= last < len(parent):
                raise ConfigError(f"{format_path(path)}: no such list item.",
                                  "check the index against the base config.")
            old = parent[int(last)]
        else:
            if last not in parent and not create:
                return
            old = parent.get(last, MISSING)
        if old is not MISSING and type(old) is type(value) and old == value:
            return
        parent[last] = value  # type: ignore[index]
        self.changes.append(Change(format_path(path), None if old is MISSING else old, value,
                                   why))
