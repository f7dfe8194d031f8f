"""Fonts for synthetic data: the packaged Thai fonts and coverage checks.

A font that lacks a glyph draws a box (.notdef) or nothing, and the image no longer shows its
label. Before rendering, every code point of the text must be in the font's cmap.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import FrozenSet, Iterable, List, Optional, Sequence, Union

from rectrain.errors import EnvironmentProblem, UserError
from rectrain.fsutil import refuse_special
from rectrain.logs import get_logger

log = get_logger("data.fonts")

FONT_SUFFIXES = (".ttf", ".otf", ".ttc")
# (python package, files to use; None = all): PyPI fontpkg-sarabun and fontpkg-noto-sans-thai.
DEFAULT_FONT_PACKAGES = (
    ("fontpkg_sarabun", ("Sarabun-Regular.ttf", "Sarabun-Medium.ttf", "Sarabun-SemiBold.ttf",
                         "Sarabun-Bold.ttf", "Sarabun-Light.ttf", "Sarabun-Italic.ttf",
                         "Sarabun-BoldItalic.ttf")),
    ("fontpkg_noto_sans_thai", None),
)
# Characters that need no glyph of their own.
NO_GLYPH_NEEDED = frozenset(" ")


@dataclass(frozen=True)
class Font:
    path: str
    name: str
    cmap: FrozenSet[int]

    def missing(self, text: str) -> List[str]:
        """Code points of ``text`` the font has no glyph for (would render as boxes)."""
        return [c for c in dict.fromkeys(text) if c not in NO_GLYPH_NEEDED and ord(c) not in self.cmap]

    def covers(self, text: str) -> bool:
        return not self.missing(text)


@lru_cache(maxsize=256)
def load_font(path: str) -> Font:
    from fontTools.ttLib import TTFont

    refuse_special(path, what="font file")
    try:
        tt = TTFont(path, lazy=True, fontNumber=0)
        cmap = tt.getBestCmap() or {}
        name = tt["name"].getDebugName(4) or Path(path).stem
        tt.close()
    except Exception as exc:  # noqa: BLE001 - a broken font file is the user's input
        raise UserError(f"{path}: cannot read the font ({exc}).", "remove it or replace it with a "
                        "valid .ttf/.otf file.") from None
    return Font(path=path, name=str(name), cmap=frozenset(cmap))


def packaged_font_files() -> List[Path]:
    """The Thai fonts of the packages we depend on, found through importlib (no fixed paths)."""
    files: List[Path] = []
    for module, names in DEFAULT_FONT_PACKAGES:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            log.warning("font package %s is not installed; skipping it.", module)
            continue
        root = Path(getattr(mod, "ROOT", None) or Path(str(mod.__file__)).parent) / "files"
        found = sorted(p for p in root.glob("*") if p.suffix.lower() in FONT_SUFFIXES)
        if names is not None:
            found = [p for p in found if p.name in names]
        files.extend(found)
    if not files:
        raise EnvironmentProblem("no packaged Thai font found.", "pip install fontpkg-sarabun "
                                 "fontpkg-noto-sans-thai, or pass --fonts DIR.")
    return files


def fonts_in_dir(folder: Union[str, Path]) -> List[Path]:
    d = Path(folder)
    if not d.is_dir():
        raise UserError(f"{d}: font folder not found.", "pass a folder of .ttf/.otf files, or `default`.")
    files = sorted(p for p in d.rglob("*") if p.suffix.lower() in FONT_SUFFIXES)
    if not files:
        raise UserError(f"{d}: no .ttf/.otf/.ttc font in this folder.", "add fonts or use `default`.")
    return files


def resolve_fonts(fonts: Optional[Union[str, Path, Sequence[Union[str, Path]]]]) -> List[Font]:
    """None/'default' -> packaged fonts; a folder -> its fonts; a list -> those files."""
    if fonts is None or (isinstance(fonts, str) and fonts == "default"):
        files: Iterable[Path] = packaged_font_files()
    elif isinstance(fonts, (str, Path)):
        p = Path(fonts)
        files = fonts_in_dir(p) if p.is_dir() else [p]
    else:
        files = [Path(f) for f in fonts]
    out = []
    for f in files:
        if not Path(f).is_file():
            raise UserError(f"{f}: font file not found.", "check the path.")
        out.append(load_font(str(f)))
    return out
