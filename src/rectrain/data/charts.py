"""``rectrain data report``: charts people would rather look at than read.

Label-length and character-frequency charts cover every line (streamed); image sizes come
from a seeded reservoir sample of up to ``max_images`` headers. The sample grid is drawn with
Pillow's raqm layout, not matplotlib: matplotlib does no OpenType shaping, so stacked Thai
marks would overlap in its text.
"""

from __future__ import annotations

import os
import random
import unicodedata
from collections import Counter
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

from rectrain.data.fonts import packaged_font_files
from rectrain.data.images import BOMB_PIXELS
from rectrain.data.labels import iter_labels_reporting
from rectrain.errors import DataError
from rectrain.fsutil import special_kind
from rectrain.logs import get_logger
from rectrain.outputs import claim_output_dir, save_with
from rectrain.plotting import save_png, subplots

PathLike = Union[str, "os.PathLike[str]"]
log = get_logger("data.report")


def _thai_font_path() -> Optional[str]:
    try:
        files = packaged_font_files()
    except Exception:  # noqa: BLE001 - charts still work with the default font
        return None
    regular = [f for f in files if f.name == "Sarabun-Regular.ttf"]
    return str((regular or files)[0])


def _tick(ch: str) -> str:
    if ch == " ":
        return "␣"
    if unicodedata.combining(ch) or unicodedata.category(ch) == "Mn":
        # on O ANG, the carrier Thai writers use to show a mark alone (Sarabun has no U+25CC)
        return "\u0e2d" + ch if "\u0e00" <= ch <= "\u0e7f" else "\u25cc" + ch
    if not ch.isprintable():
        return f"U+{ord(ch):04X}"
    return ch


REPORT_FILES = ("label_length.png", "char_frequency.png", "image_size.png", "samples.png")


def dataset_report(labels: Union[PathLike, Sequence[PathLike]], out_dir: PathLike, *,
                   images_root: Optional[PathLike] = None, samples: int = 24, seed: int = 0,
                   max_images: int = 5000, top_chars: int = 60) -> List[Path]:
    """Write label_length.png, char_frequency.png, image_size.png and samples.png to ``out_dir``."""
    from matplotlib import font_manager
    from PIL import Image

    files = [labels] if isinstance(labels, (str, os.PathLike)) else list(labels)
    for f in files:
        if not Path(f).is_file():
            raise DataError("label file not found.", "check the path.", path=str(f))
    claim_output_dir(out_dir, command="data report", writes=list(REPORT_FILES),
                     inputs=[("label file", f) for f in files] + [("images root", images_root)])
    rng = random.Random(seed)
    lengths: Counter = Counter()
    chars: Counter = Counter()
    reservoir: List[Tuple[str, str]] = []
    seen = 0
    for f in files:
        root = Path(images_root) if images_root else Path(f).resolve().parent
        for rec in iter_labels_reporting(f):
            if rec.path is None or rec.label is None:
                continue
            lengths[len(rec.label)] += 1
            chars.update(rec.label)
            seen += 1
            item = (str(root / rec.path), rec.label)
            if len(reservoir) < max_images:
                reservoir.append(item)
            else:
                j = rng.randrange(seen)
                if j < max_images:
                    reservoir[j] = item
    if not seen:
        raise DataError("no sample lines (image_path<TAB>label) found.", "run `rectrain data validate` "
                        "on the file.", path=str(files[0]))
    for p, _ in list(reservoir):
        kind = special_kind(p)
        if kind:  # never opened: a named pipe would wait forever
            log.warning("%s is %s, not a regular file: left out of the report. Fix: replace it with "
                        "the image file (`rectrain data validate` lists such lines).", p, kind)
            reservoir.remove((p, _))
    sizes: List[Tuple[int, int]] = []
    for p, _ in reservoir:
        try:
            with Image.open(p) as im:
                sizes.append(im.size)
        except Exception:  # noqa: BLE001 - broken images are validate's business
            continue
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    font_path = _thai_font_path()
    family = None
    if font_path:
        font_manager.fontManager.addfont(font_path)
        family = font_manager.FontProperties(fname=font_path).get_name()
    written: List[Path] = []

    fig, ax = subplots(figsize=(8, 4))
    ks = sorted(lengths)
    ax.bar(ks, [lengths[k] for k in ks], color="#4472c4")
    ax.set_xlabel("label length (code points)")
    ax.set_ylabel("samples")
    ax.set_title(f"Label length ({seen} samples, max {ks[-1]})")
    written.append(_save(fig, out / "label_length.png"))

    common = chars.most_common(top_chars)
    fig, ax = subplots(figsize=(max(8, len(common) * 0.22), 4))
    ax.bar(range(len(common)), [n for _, n in common], color="#ed7d31")
    ax.set_xticks(range(len(common)))
    ax.set_xticklabels([_tick(c) for c, _ in common], fontsize=9, family=family)
    ax.set_ylabel("occurrences")
    ax.set_title(f"Most frequent characters ({len(chars)} distinct; top {len(common)})")
    written.append(_save(fig, out / "char_frequency.png"))

    fig, axes = subplots(1, 3, figsize=(12, 3.5))
    if sizes:
        ws, hs = [s[0] for s in sizes], [s[1] for s in sizes]
        axes[0].hist(hs, bins=30, color="#70ad47")
        axes[1].hist(ws, bins=30, color="#70ad47")
        axes[2].hist([w / h for w, h in sizes if h], bins=30, color="#70ad47")
    for ax, name in zip(axes, ("height (px)", "width (px)", "aspect (w/h)")):
        ax.set_xlabel(name)
    axes[0].set_ylabel("images")
    fig.suptitle(f"Image sizes ({len(sizes)} images sampled)")
    written.append(_save(fig, out / "image_size.png"))

    picks = rng.sample(reservoir, min(samples, len(reservoir)))
    written.append(_sample_grid(picks, out / "samples.png", font_path))
    return written


def _save(fig, path: Path) -> Path:  # noqa: ANN001
    return save_png(fig, path)


def _sample_grid(picks: List[Tuple[str, str]], path: Path, font_path: Optional[str],
                 cell_w: int = 320, img_h: int = 48, cols: int = 3) -> Path:
    from PIL import Image, ImageDraw, ImageFont, features

    layout = ImageFont.Layout.RAQM if features.check("raqm") else ImageFont.Layout.BASIC
    font = (ImageFont.truetype(font_path, 20, layout_engine=layout) if font_path
            else ImageFont.load_default())
    cell_h = img_h + 40
    rows = max(1, (len(picks) + cols - 1) // cols)
    grid = Image.new("RGB", (cols * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(grid)
    for i, (p, label) in enumerate(picks):
        x, y = (i % cols) * cell_w, (i // cols) * cell_h
        try:
            with Image.open(p) as im:
                if im.width * im.height > BOMB_PIXELS:  # never decoded (`data validate`: huge-image)
                    draw.text((x + 5, y + 4), f"(too large: {im.width}x{im.height})", fill="red",
                              font=font)
                    draw.text((x + 5, y + img_h + 8), label[:40], fill="black", font=font)
                    continue
                im = im.convert("RGB")
                scale = min(img_h / im.height, (cell_w - 10) / im.width)
                im = im.resize((max(1, int(im.width * scale)), max(1, int(im.height * scale))))
                grid.paste(im, (x + 5, y + 4))
        except Exception:  # noqa: BLE001
            draw.text((x + 5, y + 4), "(unreadable image)", fill="red", font=font)
        draw.text((x + 5, y + img_h + 8), label[:40], fill="black", font=font)
        draw.rectangle((x, y, x + cell_w - 1, y + cell_h - 1), outline="#dddddd")
    save_with(path, lambda fh: grid.save(fh, format="PNG"))
    return path
