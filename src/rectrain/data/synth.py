"""Synthetic word images with correct Thai shaping.

Thai stacks marks: a tone mark above an upper vowel (``ที่``), marks shifted left over tall
consonants (``ป่ ฟ้``), SARA AM with a tone mark (``น้ำ``), below vowels under ``ญ ฐ``. Placing
them needs OpenType GSUB/GPOS, i.e. Pillow's raqm layout (libraqm + HarfBuzz). With the basic
layout Pillow draws every mark at its default spot: stacked marks overlap and the picture no
longer shows its label. Without raqm we therefore skip the words that need shaping and say so.

Each image depends only on (seed, index): the same seed gives the same files whatever the
number of worker processes.
"""

from __future__ import annotations

import io
import math
import os
import random
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from rectrain.data.fonts import Font, resolve_fonts
from rectrain.data.text import normalize_label
from rectrain.errors import DataError, UserError
from rectrain.fsutil import refuse_special
from rectrain.logs import get_logger
from rectrain.outputs import atomic_open, claim_output_dir

log = get_logger("data.synth")

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Effects:
    """Probabilities / strengths of each effect. ``Effects.none()`` gives clean black-on-white."""

    blur: float = 0.3  # probability of a Gaussian blur (radius 0.3-1.2 px at 32 px height)
    noise: float = 0.3  # probability of Gaussian pixel noise
    rotation: float = 2.0  # maximum angle in degrees (0 = off)
    perspective: float = 0.3  # probability of a small perspective distortion
    jpeg: float = 0.3  # probability of a JPEG round trip at quality 30-85
    background: bool = True  # gradients and speckle instead of a flat background
    colors: bool = True  # random text/background colours (else black on white)

    @classmethod
    def none(cls) -> Effects:
        return cls(blur=0.0, noise=0.0, rotation=0.0, perspective=0.0, jpeg=0.0, background=False,
                   colors=False)


DEFAULT_EFFECTS = Effects()
NO_EFFECTS = Effects.none()
EFFECT_NAMES = ("blur", "noise", "rotation", "perspective", "jpeg", "background", "colors")


def parse_effects(spec: str) -> Effects:
    """``default``, ``none``, or a comma list of effect names to switch on (the rest off)."""
    spec = (spec or "default").strip().lower()
    if spec == "default":
        return DEFAULT_EFFECTS
    if spec == "none":
        return NO_EFFECTS
    names = [s.strip() for s in spec.split(",") if s.strip()]
    bad = [n for n in names if n not in EFFECT_NAMES]
    if bad:
        raise UserError(f"unknown effect(s): {', '.join(bad)}.",
                        f"use default, none, or a comma list of: {', '.join(EFFECT_NAMES)}.")
    on: Dict[str, Any] = {}
    for f in fields(Effects):
        default = getattr(DEFAULT_EFFECTS, f.name)
        off: Any = False if isinstance(default, bool) else 0.0
        on[f.name] = default if f.name in names else off
    return Effects(**on)


# ---------------------------------------------------------------- words

_THAI = re.compile("^[\u0e01-\u0e5b]+$")


def thai_words(limit: Optional[int] = None, max_len: Optional[int] = None, seed: int = 0) -> List[str]:
    """Thai words from PyThaiNLP's shipped word list (offline), shuffled with ``seed``."""
    try:
        from pythainlp.corpus import thai_words as _words
    except ImportError:
        raise UserError("PyThaiNLP is not installed.",
                        "pip install pythainlp, or pass --words FILE.") from None
    words = sorted({normalize_label(w) for w in _words() if _THAI.match(w)})
    if max_len is not None:
        words = [w for w in words if len(w) <= max_len]
    random.Random(seed).shuffle(words)
    return words[:limit] if limit is not None else words


def read_words(path: PathLike) -> List[str]:
    """One word or short line per line, UTF-8; normalized (NFC, Thai SARA AM/mark order)."""
    refuse_special(path, what="words file")
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError("words file not found.", "pass a UTF-8 text file with one word per line, or "
                        "`thai`.", path=str(path)) from None
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 (byte {exc.start}).", "re-save the file as UTF-8.",
                        path=str(path)) from None
    words = [normalize_label(w.strip()) for w in text.splitlines()]
    words = [w for w in words if w and "\t" not in w]
    if not words:
        raise DataError("no words in the file.", "put one word per line.", path=str(path))
    return words


# ---------------------------------------------------------------- shaping

_ABOVE = "\u0e31\u0e34\u0e35\u0e36\u0e37\u0e47\u0e48\u0e49\u0e4a\u0e4b\u0e4c\u0e4d\u0e4e"
_BELOW = "\u0e38\u0e39\u0e3a"
_NEEDS_SHAPING = re.compile(
    f"[{_ABOVE}][{_ABOVE}]"  # stacked above marks (vowel + tone)
    f"|[\u0e1b\u0e1d\u0e1f\u0e2c][{_ABOVE}]"  # marks over tall consonants shift left
    f"|[\u0e0d\u0e10\u0e0e\u0e0f][{_BELOW}]"  # below vowels under descending consonants
    f"|[\u0e48-\u0e4b]\u0e33"  # tone mark + SARA AM
)


def needs_shaping(text: str) -> bool:
    """True when ``text`` only renders correctly with OpenType shaping (raqm)."""
    return bool(_NEEDS_SHAPING.search(text))


def has_raqm() -> bool:
    from PIL import features

    return bool(features.check("raqm"))


# ---------------------------------------------------------------- rendering

@dataclass(frozen=True)
class Job:
    index: int
    text: str
    font: str
    name: str  # file name relative to out_dir


def _render(job: Job, seed: int, height: int, effects: Effects, raqm: bool, out_dir: str) -> None:
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    rng = random.Random(f"{seed}:{job.index}")
    nrng = np.random.default_rng([seed & 0xFFFFFFFF, job.index])
    size = height * 2  # render large, then scale down: smoother glyphs
    layout = ImageFont.Layout.RAQM if raqm else ImageFont.Layout.BASIC
    font = ImageFont.truetype(job.font, size=size, layout_engine=layout)
    if effects.colors:
        bg_level = rng.randint(170, 255)
        bg = tuple(max(0, min(255, bg_level + rng.randint(-25, 25))) for _ in range(3))
        fg = tuple(rng.randint(0, 90) for _ in range(3))
        if rng.random() < 0.15:
            bg, fg = fg, bg
    else:
        bg, fg = (255, 255, 255), (0, 0, 0)
    left, top, right, bottom = font.getbbox(job.text)
    pad = size // 2
    w = int(math.ceil(right - left)) + 2 * pad
    h = int(math.ceil(bottom - top)) + 2 * pad
    img = Image.new("RGB", (max(w, 1), max(h, 1)), bg)
    if effects.background:
        arr = np.asarray(img, dtype=np.float32)
        grad = np.linspace(0, rng.uniform(-40, 40), img.width, dtype=np.float32)[None, :, None]
        arr = arr + grad + nrng.normal(0, rng.uniform(0, 8), size=arr.shape).astype(np.float32)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    ImageDraw.Draw(img).text((pad - left, pad - top), job.text, font=font, fill=fg)
    px = img.getpixel((0, 0))
    fill = tuple(int(c) for c in px) if isinstance(px, tuple) else (int(px or 0),) * 3
    if effects.rotation > 0:
        angle = rng.uniform(-effects.rotation, effects.rotation)
        img = img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill)
    if effects.perspective > 0 and rng.random() < effects.perspective:
        dx, dy = img.width * 0.04, img.height * 0.12
        quad = [rng.uniform(0, dx), rng.uniform(0, dy), rng.uniform(0, dx), img.height - rng.uniform(0, dy),
                img.width - rng.uniform(0, dx), img.height - rng.uniform(0, dy),
                img.width - rng.uniform(0, dx), rng.uniform(0, dy)]
        img = img.transform(img.size, Image.Transform.QUAD, quad, resample=Image.Resampling.BICUBIC,
                            fillcolor=fill)
    # crop to the ink plus a small random margin, so the word fills the height as in real crops
    gray = np.asarray(img.convert("L"), dtype=np.int16)
    ink = np.abs(gray - int(np.median(gray))) > 40
    ys, xs = np.nonzero(ink)
    if len(xs):
        mx = int(size * rng.uniform(0.05, 0.25))
        my = int(size * rng.uniform(0.05, 0.2))
        box = (max(0, xs.min() - mx), max(0, ys.min() - my), min(img.width, xs.max() + 1 + mx),
               min(img.height, ys.max() + 1 + my))
        img = img.crop(box)
    new_w = max(1, int(round(img.width * height / img.height)))
    img = img.resize((new_w, height), Image.Resampling.LANCZOS)
    if effects.blur > 0 and rng.random() < effects.blur:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2) * height / 32))
    if effects.noise > 0 and rng.random() < effects.noise:
        noisy = np.asarray(img, dtype=np.float32) + nrng.normal(0, rng.uniform(3, 12), (height, new_w, 3))
        img = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    if effects.jpeg > 0 and rng.random() < effects.jpeg:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=rng.randint(30, 85))
        buf.seek(0)
        img = Image.open(buf).convert("RGB")
    target = Path(out_dir) / job.name
    with atomic_open(target, "wb") as fh:
        img.save(fh, "PNG")


def _render_chunk(jobs: Sequence[Job], seed: int, height: int, effects_d: Dict[str, Any], raqm: bool,
                  out_dir: str) -> int:
    effects = Effects(**effects_d)
    for job in jobs:
        _render(job, seed, height, effects, raqm, out_dir)
    return len(jobs)


def _usable(words: Sequence[str], fonts: List[Font], raqm: bool
            ) -> Tuple[List[Tuple[str, Tuple[int, ...]]], Dict[str, int]]:
    """Each word with the fonts that cover it; counts of words refused and why."""
    usable: List[Tuple[str, Tuple[int, ...]]] = []
    refused = {"no-font-covers": 0, "needs-shaping-without-raqm": 0}
    examples: Dict[str, List[str]] = {k: [] for k in refused}
    unique = list(dict.fromkeys(words))
    all_chars = set().union(*unique) if unique else set()
    lacking = [frozenset(font.missing("".join(sorted(all_chars)))) for font in fonts]
    for font, miss in zip(fonts, lacking):
        if miss:
            log.info("font %s lacks %d character(s) of the words (e.g. %s); it is used only for words "
                     "it covers.", font.name, len(miss),
                     " ".join(f"U+{ord(c):04X}" for c in sorted(miss)[:5]))
    for w in unique:
        if not raqm and needs_shaping(w):
            refused["needs-shaping-without-raqm"] += 1
            examples["needs-shaping-without-raqm"].append(w)
            continue
        chars = set(w)
        ok = tuple(i for i, miss in enumerate(lacking) if not (miss and chars & miss))
        if not ok:
            refused["no-font-covers"] += 1
            examples["no-font-covers"].append(w)
            continue
        usable.append((w, ok))
    if refused["no-font-covers"]:
        log.warning("%d word(s) skipped: no font has glyphs for all their characters (e.g. %s).",
                    refused["no-font-covers"], ", ".join(repr(w) for w in examples["no-font-covers"][:3]))
    if refused["needs-shaping-without-raqm"]:
        log.warning("%d word(s) skipped: they need OpenType shaping (stacked Thai marks) and this Pillow "
                    "has no raqm layout (e.g. %s). Fix: install Pillow with libraqm.",
                    refused["needs-shaping-without-raqm"],
                    ", ".join(repr(w) for w in examples["needs-shaping-without-raqm"][:3]))
    return usable, refused


def synthesize(words: Sequence[str], out_dir: PathLike, n: int, *,
               fonts: Optional[Union[str, Path, Sequence[Union[str, Path]]]] = None, seed: int = 0,
               height: int = 32, effects: Effects = DEFAULT_EFFECTS, workers: Optional[int] = None,
               prefix: str = "", line_prob: float = 0.0, max_words_per_line: int = 3) -> Path:
    """Render ``n`` images to ``out_dir/images/`` and write ``out_dir/labels.txt``.

    Labels are ``images/<prefix>NNNNNNN.png<TAB>text`` relative to ``out_dir``. ``line_prob`` is
    the share of images showing a short line (2..max_words_per_line words joined by a space;
    train those with use_space_char). Fonts that lack a character of a word are never used for
    it; words no font covers are skipped (logged).
    """
    if n < 1:
        raise UserError(f"n must be at least 1, got {n}.", "pass the number of images to render.")
    if height < 8:
        raise UserError(f"height {height} is too small.", "use at least 8 (PaddleOCR uses 32 or 48).")
    font_list = resolve_fonts(fonts)
    raqm = has_raqm()
    if not raqm:
        log.warning("Pillow has no raqm layout engine: words with stacked Thai marks are skipped. "
                    "Fix: install a Pillow build with libraqm (the PyPI wheels have it).")
    clean = [normalize_label(w.strip()) for w in words if w and w.strip()]
    usable, _refused = _usable(clean, font_list, raqm)
    if not usable:
        raise DataError("none of the words can be rendered with the fonts given.",
                        "use fonts that cover the script (e.g. --fonts default for Thai).")
    out = claim_output_dir(out_dir, command="data synth", writes=["labels.txt", "images/"],
                           inputs=[("fonts folder", fonts if isinstance(fonts, (str, Path)) else None)])
    (out / "images").mkdir(parents=True, exist_ok=True)
    jobs: List[Job] = []
    for i in range(n):
        rng = random.Random(f"{seed}:job:{i}")
        word, font_ids = usable[rng.randrange(len(usable))]
        text = word
        if line_prob > 0 and rng.random() < line_prob:
            parts = [word] + [usable[rng.randrange(len(usable))][0]
                              for _ in range(rng.randint(1, max(1, max_words_per_line - 1)))]
            text = " ".join(parts)
            font_ids = tuple(fi for fi in font_ids if font_list[fi].covers(text)) or font_ids
        font = font_list[font_ids[rng.randrange(len(font_ids))]]
        jobs.append(Job(i, text, font.path, f"images/{prefix}{i:07d}.png"))
    n_workers = workers or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    eff = asdict(effects)
    chunk = max(1, min(64, math.ceil(n / (n_workers * 4))))
    chunks = [jobs[i:i + chunk] for i in range(0, len(jobs), chunk)]
    from rich.progress import Progress

    with Progress(transient=True, disable=n < 500) as bar:
        task = bar.add_task("rendering", total=n)
        if n_workers <= 1 or len(chunks) == 1:
            for c in chunks:
                bar.advance(task, _render_chunk(c, seed, height, eff, raqm, str(out)))
        else:
            with ProcessPoolExecutor(max_workers=n_workers) as pool:
                futs = [pool.submit(_render_chunk, c, seed, height, eff, raqm, str(out)) for c in chunks]
                for f in futs:
                    bar.advance(task, f.result())
    with atomic_open(out / "labels.txt", "w") as fh:
        for job in jobs:
            fh.write(f"{job.name}\t{job.text}\n")
    log.info("synthesized %d images with %d font(s) from %d usable words into %s", n, len(font_list),
             len(usable), out)
    return out


__all__ = ["DEFAULT_EFFECTS", "NO_EFFECTS", "Effects", "needs_shaping", "parse_effects", "read_words",
           "synthesize", "thai_words"]
