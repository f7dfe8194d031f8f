"""data_preparation/sample/ is real, consistent and small, and make_sample.py reproduces it."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data_preparation" / "sample"
REC = SAMPLE / "recognition"
DET = SAMPLE / "detection"


def label_lines(path: Path) -> list:
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and b"\r" not in raw, f"{path}: BOM or CR"
    return [line.split("\t") for line in raw.decode("utf-8").splitlines()]


def test_sample_is_small() -> None:
    total = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert total < 1_000_000, f"the sample is {total} bytes; keep it under 1 MB"


def test_recognition_sample_is_consistent() -> None:
    rows = label_lines(REC / "labels.txt")
    assert 30 <= len(rows) <= 60
    dict_lines = (REC / "dict.txt").read_text(encoding="utf-8").split("\n")
    assert dict_lines[-1] == "", "dict.txt ends with a newline"
    classes = dict_lines[:-1]
    assert all(len(c) == 1 for c in classes), "one code point per line"
    assert len(set(classes)) == len(classes), "no duplicates"
    for path, label in rows:
        assert not path.startswith("/") and ".." not in path
        assert label and label == unicodedata.normalize("NFC", label) and "\u0e4d\u0e32" not in label
        assert set(label) <= set(classes), f"{label!r} has characters missing from dict.txt"
        with Image.open(REC / path) as img:
            img.load()
            assert img.height == 32 and img.width >= 8
    labels = {label for _, label in rows}
    # The cases the docs talk about are really in it: stacked marks, SARA AM, Thai digits.
    assert "ที่" in labels and "น้ำ" in labels and any("\u0e50" <= c <= "\u0e59" for c in "".join(labels))


def test_detection_sample_boxes_inside_pages() -> None:
    lines = label_lines(DET / "pages" / "Label.txt")
    assert len(lines) == 3
    skipped = 0
    for rel, annotation in lines:
        page = DET / rel  # PPOCRLabel paths are relative to the parent of the image folder
        with Image.open(page) as img:
            width, height = img.size
        boxes = json.loads(annotation)
        assert len(boxes) >= 5
        for box in boxes:
            assert set(box) == {"transcription", "points", "difficult"}
            assert len(box["points"]) == 4
            assert all(0 <= x <= width and 0 <= y <= height for x, y in box["points"])
            skipped += box["transcription"] == "###" or box["difficult"]
        icdar = DET / "icdar2015" / f"gt_{Path(rel).stem}.txt"
        icdar_rows = icdar.read_text(encoding="utf-8").splitlines()
        assert len(icdar_rows) == len(boxes)
        for row, box in zip(icdar_rows, boxes):
            parts = row.split(",", 8)
            assert [int(v) for v in parts[:8]] == [v for point in box["points"] for v in point]
            assert parts[8] == ("###" if box["difficult"] else box["transcription"])
    assert skipped == 3


@pytest.mark.slow
def test_make_sample_reproduces_the_committed_sample(tmp_path: Path) -> None:
    script = ROOT / "data_preparation" / "scripts" / "make_sample.py"
    proc = subprocess.run([sys.executable, str(script), "-o", str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for rel in ["recognition/labels.txt", "recognition/dict.txt", "detection/pages/Label.txt",
                "detection/icdar2015/gt_page_001.txt"]:
        assert (tmp_path / rel).read_bytes() == (SAMPLE / rel).read_bytes(), rel
    for png in sorted((SAMPLE / "recognition" / "images").glob("*.png")):
        with Image.open(png) as a, Image.open(tmp_path / "recognition" / "images" / png.name) as b:
            assert a.size == b.size, png.name
