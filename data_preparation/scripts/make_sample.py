"""Generate the small sample dataset in data_preparation/sample/ (committed; rerun to refresh).

Usage:  venv/bin/python data_preparation/scripts/make_sample.py [-o data_preparation/sample]

What it writes (deterministic for a given Pillow and font version):

    recognition/images/word_000.png ...   ~40 Thai word images, 32 px high, black on light grey
    recognition/labels.txt                image_path<TAB>label, paths relative to recognition/
    recognition/dict.txt                  one code point per line, sorted by code point
    detection/pages/page_000.png ...      3 page images with words drawn at known boxes
    detection/pages/Label.txt             PPOCRLabel format, as PPOCRLabel saves it (paths
                                          "pages/page_000.png", relative to detection/)
    detection/icdar2015/gt_page_000.txt   the same boxes in ICDAR 2015 format (one file per page)

Thai needs complex text layout so that tone marks and upper vowels stack correctly (e.g. ที่,
ผู้, น้ำ); the script refuses to run when Pillow lacks libraqm instead of drawing them wrong.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import sys
import unicodedata
from pathlib import Path
from typing import List, Sequence, Tuple

from PIL import Image, ImageDraw, ImageFont, features

# Words chosen to cover what Thai OCR gets wrong: stacked marks (tone mark over an upper
# vowel), SARA AM (U+0E33), leading vowels, below-base vowels, MAI YAMOK, Thai digits, and a
# little Latin. All are NFC; SARA AM is always the single code point U+0E33.
WORDS = [
    "สวัสดี", "ขอบคุณ", "ภาษาไทย", "น้ำ", "ที่", "ผู้ใหญ่", "กี่", "ปั้น", "คำ", "ทำงาน",
    "เรียน", "โรงเรียน", "ไก่", "ใจ", "เด็กๆ", "ประเทศ", "กรุงเทพ", "ถนน", "ร้าน", "อาหาร",
    "ข้าว", "กุ้ง", "ปู", "ผึ้ง", "รู้", "พี่น้อง", "เมือง", "แม่น้ำ", "ตู้", "สิ่ง",
    "ฤดู", "ศูนย์", "๒๕๖๙", "เลข๑๐", "บ้าน", "ครู", "ต้นไม้", "OCR", "2026", "ราคา",
]

REC_HEIGHT = 32
PAGE_SIZE = (480, 320)


def _font_files() -> List[Path]:
    """Sarabun (regular, bold, italic) and Noto Sans Thai from their PyPI font packages."""
    files: List[Path] = []
    for package, names in (("fontpkg_sarabun", ["Sarabun-Regular.ttf", "Sarabun-Bold.ttf",
                                                 "Sarabun-Italic.ttf"]),
                           ("fontpkg_noto_sans_thai", None)):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        folder = Path(list(spec.submodule_search_locations)[0]) / "files"
        found = sorted(folder.glob("*.ttf")) if names is None else [folder / n for n in names]
        files.extend(p for p in found if p.is_file())
    if not files:
        sys.exit("error: no Thai font found. Fix: pip install fontpkg-sarabun fontpkg-noto-sans-thai")
    return files


def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.RAQM)


def render_word(text: str, font: ImageFont.FreeTypeFont, ink: int, paper: int, pad: int) -> Image.Image:
    """Draw ``text`` on a canvas, crop to the ink plus ``pad``, scale to REC_HEIGHT."""
    left, top, right, bottom = font.getbbox(text)
    canvas = Image.new("L", (right - left + 4 * pad, bottom - top + 4 * pad), paper)
    ImageDraw.Draw(canvas).text((2 * pad - left, 2 * pad - top), text, font=font, fill=ink)
    inverted = canvas.point(lambda v: 255 if abs(v - paper) > 40 else 0)
    box = inverted.getbbox() or (0, 0, canvas.width, canvas.height)
    box = (max(box[0] - pad, 0), max(box[1] - pad, 0),
           min(box[2] + pad, canvas.width), min(box[3] + pad, canvas.height))
    crop = canvas.crop(box)
    width = max(8, round(crop.width * REC_HEIGHT / crop.height))
    return crop.resize((width, REC_HEIGHT), Image.Resampling.LANCZOS)


def make_recognition(out: Path, fonts: Sequence[Path], rng: random.Random) -> int:
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, word in enumerate(WORDS):
        font = _font(fonts[i % len(fonts)], 40)
        img = render_word(word, font, ink=rng.randint(0, 60), paper=rng.randint(215, 255),
                          pad=rng.randint(3, 7))
        name = f"images/word_{i:03d}.png"
        img.save(out / name, optimize=True)
        lines.append(f"{name}\t{word}\n")
    (out / "labels.txt").write_text("".join(lines), encoding="utf-8")
    chars = sorted({c for w in WORDS for c in w})
    (out / "dict.txt").write_text("".join(c + "\n" for c in chars), encoding="utf-8")
    return len(lines)


Quad = List[List[int]]


def _rotate(points: Sequence[Tuple[float, float]], angle_deg: float, center: Tuple[float, float]
            ) -> List[Tuple[float, float]]:
    import math

    a = math.radians(angle_deg)
    cx, cy = center
    return [(cx + (x - cx) * math.cos(a) - (y - cy) * math.sin(a),
             cy + (x - cx) * math.sin(a) + (y - cy) * math.cos(a)) for x, y in points]


def draw_page(words: Sequence[str], fonts: Sequence[Path], rng: random.Random, rotate_index: int
              ) -> Tuple[Image.Image, List[Tuple[str, Quad]]]:
    """Lay ``words`` out in rows on a page; one word is rotated by a few degrees.

    Returns the page and, per word, its quadrilateral (clockwise from top-left) in page pixels.
    """
    page = Image.new("L", PAGE_SIZE, 250)
    boxes: List[Tuple[str, Quad]] = []
    x, y, row_h = 24, 24, 0
    for i, word in enumerate(words):
        font = _font(fonts[rng.randrange(len(fonts))], rng.choice([26, 30, 34]))
        left, top, right, bottom = font.getbbox(word)
        w, h = right - left + 12, bottom - top + 12
        if x + w > PAGE_SIZE[0] - 24:
            x, y, row_h = 24, y + row_h + 28, 0
        tile = Image.new("L", (w, h), 0)
        ImageDraw.Draw(tile).text((6 - left, 6 - top), word, font=font, fill=255)
        corners = [(0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h))]
        angle = 8.0 if i == rotate_index else 0.0
        if angle:
            # PIL rotates counter-clockwise for positive angles; in image coordinates (y down)
            # that is a rotation by -angle around the centre.
            rotated = tile.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
            corners = _rotate(corners, -angle, (w / 2, h / 2))
            shift = ((rotated.width - w) / 2, (rotated.height - h) / 2)
            corners = [(cx + shift[0], cy + shift[1]) for cx, cy in corners]
            tile = rotated
        page.paste(0, (x, y), tile)
        quad = [[round(x + cx), round(y + cy)] for cx, cy in corners]
        boxes.append((word, quad))
        x += tile.width + 24
        row_h = max(row_h, tile.height)
    return page, boxes


def make_detection(out: Path, fonts: Sequence[Path], rng: random.Random) -> int:
    pages_dir = out / "pages"
    icdar_dir = out / "icdar2015"
    pages_dir.mkdir(parents=True, exist_ok=True)
    icdar_dir.mkdir(parents=True, exist_ok=True)
    label_lines = []
    total = 0
    for p in range(3):
        words = rng.sample(WORDS, 7)
        page, boxes = draw_page(words, fonts, rng, rotate_index=p % 7)
        name = f"page_{p:03d}.png"
        page.save(pages_dir / name, optimize=True)
        entries = []
        icdar = []
        for j, (word, quad) in enumerate(boxes):
            # The last box of each page shows the two ways to exclude a box from training.
            transcription, difficult = word, False
            if j == len(boxes) - 1:
                transcription, difficult = ("###", False) if p == 0 else (word, True)
            entries.append({"transcription": transcription, "points": quad, "difficult": difficult})
            flat = ",".join(str(v) for point in quad for v in point)
            icdar.append(f"{flat},{'###' if difficult else transcription}\n")
            total += 1
        label_lines.append(f"pages/{name}\t{json.dumps(entries, ensure_ascii=False)}\n")
        (icdar_dir / f"gt_page_{p:03d}.txt").write_text("".join(icdar), encoding="utf-8")
    (pages_dir / "Label.txt").write_text("".join(label_lines), encoding="utf-8")
    return total


def main(argv: List[str] | None = None) -> int:
    default_out = Path(__file__).resolve().parents[1] / "sample"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=default_out)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    if not features.check("raqm"):
        print("error: Pillow has no libraqm, so Thai marks would not stack correctly. "
              "Fix: install a Pillow wheel from PyPI (it bundles raqm).", file=sys.stderr)
        return 2
    for word in WORDS:
        assert unicodedata.normalize("NFC", word) == word and "\u0e4d\u0e32" not in word, word
    fonts = _font_files()
    rng = random.Random(args.seed)
    n_rec = make_recognition(args.out / "recognition", fonts, rng)
    n_det = make_detection(args.out / "detection", fonts, rng)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"wrote {n_rec} word images and {n_det} boxes on 3 pages to {args.out} ({size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
