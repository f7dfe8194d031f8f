"""A PNG grid of the worst samples: each image with its label and the model's reading, in a
Thai-capable font (Sarabun, else Noto Sans Thai) so stacked vowels and tone marks show."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, List, Optional, Sequence

from rectrain.logs import get_logger
from rectrain.plotting import save_png, subplots

log = get_logger("model.grid")

_FONT_PACKAGES = (("fontpkg_sarabun", "Sarabun-Regular.ttf"),
                  ("fontpkg_noto_sans_thai", "NotoSansThai-Regular.ttf"))


def thai_font_path() -> Optional[Path]:
    for package, name in _FONT_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(list(spec.submodule_search_locations)[0])
        exact = list(root.rglob(name))
        found = exact or sorted(root.rglob("*.ttf"))
        if found:
            return found[0]
    return None


def _order(samples: Sequence[Any]) -> List[Any]:
    """Wrong first, the furthest from the label first, then the least confident."""
    return sorted(samples, key=lambda s: (s.correct, -s.norm_edit_distance, s.score))


def worst_samples_grid(samples: Sequence[Any], out: str, *, limit: int = 24, columns: int = 3) -> Path:
    """Write the ``limit`` worst samples (objects with path, label, prediction, score, correct,
    norm_edit_distance) as a PNG grid; returns its path."""
    from matplotlib import font_manager
    from PIL import Image

    chosen = _order(samples)[:limit]
    font_file = thai_font_path()
    if font_file is not None:
        prop = font_manager.FontProperties(fname=str(font_file), size=11)
    else:
        log.warning("no Thai font found (fontpkg-sarabun); Thai labels may show as boxes.")
        prop = font_manager.FontProperties(size=11)
    rows = max(1, -(-len(chosen) // columns))
    fig, axes = subplots(rows, columns, figsize=(4.2 * columns, 1.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, sample in zip(axes.flat, chosen):
        try:
            with Image.open(sample.path) as img:
                ax.imshow(img.convert("RGB"))
        except OSError:
            ax.text(0.5, 0.5, "(unreadable)", ha="center", va="center", transform=ax.transAxes)
        mark = "OK " if sample.correct else "ERR"
        read = sample.prediction if sample.prediction else "(nothing)"
        ax.set_title(f"{mark}  label: {sample.label}\n        read: {read}  ({sample.score:.2f})",
                     fontproperties=prop, loc="left", color="black" if sample.correct else "darkred")
    if not chosen:
        axes.flat[0].text(0.5, 0.5, "no samples", ha="center", va="center")
    fig.suptitle(f"worst {len(chosen)} of {len(samples)} samples", fontproperties=prop)
    return save_png(fig, Path(out).resolve())
