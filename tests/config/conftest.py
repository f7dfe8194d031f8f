"""Tiny recognition datasets made on the fly (PIL + the Sarabun font) and the official
PaddleOCR configs (by path, from ../shared; skipped when absent)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence

import pytest

REPO = Path(__file__).resolve().parents[2]
OFFICIAL = (REPO / ".." / "shared" / "paddleocr-configs").resolve()

WORDS = ["สวัสดี", "ไทย", "abc", "ok", "ทดสอบ", "hello", "บ้าน", "น้ำ", "12", "ข้าว", "ดี", "cat"]


@dataclass
class TinyData:
    root: Path
    train: Path
    val: Path
    dict_path: Path
    words: List[str]


def _font(size: int):
    from PIL import ImageFont

    try:
        import fontpkg_sarabun  # noqa: F401

        path = Path(fontpkg_sarabun.__file__).parent / "files" / "Sarabun-Regular.ttf"
        return ImageFont.truetype(str(path), size)
    except (ImportError, OSError):
        return ImageFont.load_default()


def make_data(root: Path, words: Sequence[str] = WORDS, n_train: int = 8,
              size=(100, 32)) -> TinyData:
    from PIL import Image, ImageDraw

    root.mkdir(parents=True, exist_ok=True)
    (root / "img").mkdir(exist_ok=True)
    font = _font(22)
    lines = []
    for i, w in enumerate(words):
        im = Image.new("RGB", size, "white")
        ImageDraw.Draw(im).text((4, 2), w, fill="black", font=font)
        im.save(root / "img" / f"{i}.png")
        lines.append(f"img/{i}.png\t{w}\n")
    train = root / "train.txt"
    val = root / "val.txt"
    train.write_text("".join(lines[:n_train]), encoding="utf-8")
    val.write_text("".join(lines[n_train:]), encoding="utf-8")
    dict_path = root / "dict.txt"
    dict_path.write_text("".join(c + "\n" for c in sorted(set("".join(words)))),
                         encoding="utf-8")
    return TinyData(root, train, val, dict_path, list(words))


@pytest.fixture
def tiny(tmp_path: Path) -> TinyData:
    return make_data(tmp_path / "data")


@pytest.fixture
def official() -> Path:
    if not OFFICIAL.is_dir():
        pytest.skip(f"official PaddleOCR configs not found at {OFFICIAL} (../shared beside the "
                    "repository)")
    return OFFICIAL
