"""A PaddleOCR training config, read in one place into one typed view.

Every command that reads an engine config file (``config build --base``, ``config check``,
``train``, ``export``, ``bench loader``, ``runs compare``) goes through :func:`load_engine_config`
(or :func:`parse_engine_config` for text, as the presets are), so a config is refused the same
way everywhere: a missing file, a binary file (weights passed as the config), bad YAML with the
line, a label file passed as the config, a YAML that is not a mapping, a missing section, each
with the fix.

:class:`EngineConfig` is a thin, read-only view over the loaded mapping (it is a ``Mapping``:
code that walks the sections keeps working) with named properties for what rectrain reads
(``global_section``, ``dict_path``, ``main_indicator``, ``label_files(mode)`` ...), so callers do
not spell ``(cfg.get("Global") or {}).get(...)`` again. Code that edits a config (the builder)
works on ``.data``.

PyPI's PyYAML expands anchors and aliases on load (``max_text_length`` in ``Global`` and in the
NRTR head become two independent values: the builder keeps them consistent itself).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from rectrain.errors import ConfigError
from rectrain.outputs import refuse_special
from rectrain.yamlfile import parse_yaml

BUILD_FIX = "create one with `rectrain config build`."


class EngineConfig(Mapping[str, Any]):
    """The sections of a PaddleOCR config (``Global``, ``Architecture``, ``Train`` ...) and
    where it came from (``source``: a path or ``preset <name>``)."""

    def __init__(self, data: Dict[str, Any], source: str = "config") -> None:
        self.data = data
        self.source = source

    # the Mapping protocol, over the sections
    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"EngineConfig({self.source!r}, sections={list(self.data)})"

    # named properties
    def section(self, name: str) -> Dict[str, Any]:
        """The section ``name`` (``{}`` when absent or not a mapping)."""
        value = self.data.get(name)
        return value if isinstance(value, dict) else {}

    @property
    def global_section(self) -> Dict[str, Any]:
        return self.section("Global")

    @property
    def dict_path(self) -> Optional[str]:
        value = self.global_section.get("character_dict_path")
        return str(value) if value else None

    @property
    def use_space_char(self) -> bool:
        return bool(self.global_section.get("use_space_char"))

    @property
    def pretrained_model(self) -> Any:
        return self.global_section.get("pretrained_model")

    @property
    def main_indicator(self) -> str:
        """The metric that decides the best model (``Metric.main_indicator``, default ``acc``)."""
        return str(self.section("Metric").get("main_indicator", "acc"))

    def label_files(self, mode: str) -> List[str]:
        """``<mode>.dataset.label_file_list`` as a list (``Train`` or ``Eval``)."""
        files = (self.section(mode).get("dataset") or {}).get("label_file_list") or []
        return [str(files)] if isinstance(files, str) else [str(f) for f in files]


def parse_engine_config(text: str, source: str, *, require: Sequence[str] = ()) -> EngineConfig:
    """The config in ``text`` (from ``source``, for the messages). ``require``: sections that
    must be there (``("Global", "Train")`` for training)."""
    try:
        data = parse_yaml(text, source)
    except ConfigError as exc:
        if "\t" in text[:2000] and "not valid YAML" in str(exc):  # image path, TAB, label
            raise ConfigError(f"{exc.message} It looks like a label file (image path, TAB, label).",
                              "pass the training config (from `rectrain config build`), not a "
                              "label file.") from None
        raise
    if not isinstance(data, dict):
        hint = " (it looks like a label file: image path, TAB, label)" if "\t" in text[:2000] else ""
        raise ConfigError(f"{source}: a training config must be a YAML mapping with sections "
                          f"such as Global, Architecture, Train and Eval; got "
                          f"{type(data).__name__}{hint}.",
                          "pass a PaddleOCR recognition config (configs/rec/*.yml) or a preset "
                          "name from `rectrain config presets`.")
    missing = [name for name in require if not isinstance(data.get(name), dict)]
    if missing:
        raise ConfigError(f"{source}: not a PaddleOCR training config (no {'/'.join(missing)} "
                          "section).", BUILD_FIX)
    return EngineConfig(data, source)


def load_engine_config(path: Union[str, Path], *, require: Sequence[str] = ()) -> EngineConfig:
    """The one reader of a PaddleOCR config file (see the module docstring)."""
    path = Path(path).expanduser()
    refuse_special(path, what="training config")
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found.",
                          "check the path, or " + BUILD_FIX)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (a binary file, e.g. weights, or another "
                          "encoding), so not a training config.",
                          "pass the config written by `rectrain config build` (UTF-8 YAML), or "
                          "save it as UTF-8.") from exc
    return parse_engine_config(text, str(path), require=require)
