"""Shared test data for the SageMaker tests."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Dict

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ENGINE_LOG = FIXTURES / "engine_th_ppocrv5_cpu.log"
NOW = _dt.datetime(2026, 11, 25, 20, 0, 0, tzinfo=_dt.timezone.utc)
ROLE = "arn:aws:iam::123456789012:role/RectrainSageMaker"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/rectrain:0.1.0"


def job_dict(**extra: Any) -> Dict[str, Any]:
    data: Dict[str, Any] = {
        "name": "thai-rec", "role": ROLE, "image": IMAGE, "region": "us-east-1",
        "train": "s3://rec-bucket/datasets/thai/train", "val": "s3://rec-bucket/datasets/thai/val",
        "output": "s3://rec-bucket/rectrain/jobs",
        "training": {"preset": "th-ppocrv5-mobile", "dict": "dict.txt", "epochs": 20},
    }
    data.update(extra)
    return data

SHARED_CONFIGS = Path(__file__).resolve().parents[2] / ".." / "shared" / "paddleocr-configs"
WORDS = ["สวัสดี", "ไทย", "กา", "น้ำ", "ดี", "มา", "ปี", "ที่", "ok", "42", "ข้าว", "go"]


def make_tiny_dataset(root: Path, n_train: int = 8, n_val: int = 4) -> Dict[str, Path]:
    """PIL-drawn 3x32x100 word images, ``train.txt``/``val.txt`` (relative paths) and a
    ``dict.txt`` with every character used."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        import fontpkg_sarabun

        font = ImageFont.truetype(str(Path(fontpkg_sarabun.ROOT) / "files" / "Sarabun-Regular.ttf"), 22)
    except (ImportError, OSError):
        font = ImageFont.load_default()
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n_train + n_val):
        word = WORDS[i % len(WORDS)]
        image = Image.new("RGB", (100, 32), "white")
        ImageDraw.Draw(image).text((4, 0), word, font=font, fill="black")
        image.save(root / "images" / f"{i:03d}.png")
        lines.append(f"images/{i:03d}.png\t{word}")
    (root / "train.txt").write_text("\n".join(lines[:n_train]) + "\n", encoding="utf-8")
    (root / "val.txt").write_text("\n".join(lines[n_train:]) + "\n", encoding="utf-8")
    chars = sorted({c for w in WORDS for c in w})
    (root / "dict.txt").write_text("\n".join(chars) + "\n", encoding="utf-8")
    return {"root": root, "train": root / "train.txt", "val": root / "val.txt", "dict": root / "dict.txt"}
