"""`data pack --max-height`: taller images shrunk once (aspect ratio kept, lossless PNG, JPEG
q95), everything else byte for byte, the shrinking recorded in the manifest."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict

import cv2
import numpy as np
import pytest

from rectrain.config.presets import PRESETS
from rectrain.data.shrink import shrink_bytes
from rectrain.storage.manifest import Manifest

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=SRC)
    return subprocess.run([sys.executable, "-m", "rectrain", "--log-level", "warning", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def _tree(root: Path) -> Dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    (root / "img" / "ก").mkdir(parents=True)
    (root / "empty").mkdir()
    rng = np.random.default_rng(0)
    tall = rng.integers(0, 255, (96, 300, 3), dtype=np.uint8)  # 3x a 32-px input
    cv2.imencode(".png", tall)[1].tofile(str(root / "img" / "ก" / "tall.png"))
    gray = rng.integers(0, 255, (40, 50), dtype=np.uint8)  # not taller than 48: kept
    cv2.imencode(".png", gray)[1].tofile(str(root / "img" / "short.png"))
    photo = cv2.GaussianBlur(rng.integers(0, 255, (128, 200, 3), dtype=np.uint8), (9, 9), 3)
    cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tofile(str(root / "img" / "photo.jpg"))
    gray_tall = rng.integers(0, 255, (100, 40), dtype=np.uint8)
    cv2.imencode(".png", gray_tall)[1].tofile(str(root / "img" / "gray_tall.png"))
    (root / "img" / "broken.png").write_bytes(b"\x89PNG not really")
    (root / "img" / "anim.gif").write_bytes(b"GIF89a" + bytes(64))
    (root / "labels.txt").write_text("img/ก/tall.png\tสวัสดี\nimg/short.png\tok\n", encoding="utf-8")
    return root


def test_pack_max_height_shrinks_and_records(dataset: Path, tmp_path: Path) -> None:
    before = _tree(dataset)
    out = tmp_path / "packed"
    proc = _cli("data", "pack", str(dataset), "-o", str(out), "--max-height", "48", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert _tree(dataset) == before  # the source is never touched
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".packed.shrink-")]
    manifest = Manifest.read(out / "manifest.jsonl")
    header = json.loads((out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert header["shrink"] == manifest.shrink == result["shrink"]
    rec = manifest.shrink
    assert rec["max_height"] == 48 and rec["resized"] == 3 and rec["kept"] == 1
    assert rec["skipped"] == 3  # labels.txt, the GIF, the broken PNG
    assert rec["undecodable"] == ["img/broken.png: does not decode"]
    assert rec["bytes_after"] < rec["bytes_before"] and rec["aspect_ratio"] == "kept"

    restored = tmp_path / "restored"
    proc = _cli("data", "unpack", str(out), "-o", str(restored), "--json")
    assert proc.returncode == 0, proc.stderr
    got = _tree(restored)
    assert set(got) == set(before)
    assert (restored / "empty").is_dir()
    for same in ("labels.txt", "img/short.png", "img/broken.png", "img/anim.gif"):
        assert got[same] == before[same]
    tall = cv2.imdecode(np.fromfile(str(restored / "img" / "ก" / "tall.png"), np.uint8), cv2.IMREAD_UNCHANGED)
    orig = cv2.imdecode(np.fromfile(str(dataset / "img" / "ก" / "tall.png"), np.uint8), cv2.IMREAD_UNCHANGED)
    assert tall.shape == (48, 150, 3)  # 300 x 96 -> 150 x 48: the aspect ratio kept
    assert np.array_equal(tall, cv2.resize(orig, (150, 48), interpolation=cv2.INTER_AREA))  # lossless
    gray = cv2.imdecode(np.fromfile(str(restored / "img" / "gray_tall.png"), np.uint8), cv2.IMREAD_UNCHANGED)
    assert gray.shape == (48, 19)  # 40 x 100 -> 19.2 -> 19 x 48, still one channel
    photo = cv2.imdecode(np.fromfile(str(restored / "img" / "photo.jpg"), np.uint8), cv2.IMREAD_COLOR)
    assert photo.shape == (48, 75, 3)  # 200 x 128 -> 75 x 48
    src = cv2.imdecode(np.fromfile(str(dataset / "img" / "photo.jpg"), np.uint8), cv2.IMREAD_COLOR)
    ref = cv2.resize(src, (75, 48), interpolation=cv2.INTER_AREA)
    assert np.abs(photo.astype(int) - ref.astype(int)).mean() < 2.0  # quality 95


def test_max_height_auto_from_the_config(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "p1"
    proc = _cli("data", "pack", str(dataset), "-o", str(out), "--max-height", "auto",
                "--config", str(PRESETS["ppocrv5-mobile"].path), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["shrink"]["max_height"] == 64  # multi-scale up to 64
    proc = _cli("data", "pack", str(dataset), "-o", str(tmp_path / "p2"), "--max-height", "auto",
                "--config", str(PRESETS["crnn-mv3"].path), "--json")
    assert json.loads(proc.stdout)["shrink"]["max_height"] == 48  # 32-px input: 48
    proc = _cli("data", "pack", str(dataset), "-o", str(tmp_path / "p3"), "--max-height", "auto")
    assert proc.returncode == 2 and "--config" in proc.stderr
    proc = _cli("data", "pack", str(dataset), "-o", str(tmp_path / "p4"), "--max-height", "4")
    assert proc.returncode == 2 and "too small" in proc.stderr


def test_shrink_bytes_leaves_short_images_alone() -> None:
    img = np.zeros((32, 100, 3), np.uint8)
    data = cv2.imencode(".png", img)[1].tobytes()
    assert shrink_bytes(data, ".png", 48) is None
    assert shrink_bytes(data, ".PNG", 16)[2] == (50, 16)
    with pytest.raises(ValueError):
        shrink_bytes(b"nope", ".png", 16)


def test_output_inside_the_dataset_is_refused_and_nothing_is_left(dataset: Path) -> None:
    before = _tree(dataset)
    proc = _cli("data", "pack", str(dataset), "-o", str(dataset / "packed"), "--max-height", "48")
    assert proc.returncode == 2 and "inside the dataset folder" in proc.stderr
    assert _tree(dataset) == before and not (dataset / "packed").exists()
    assert not [p for p in dataset.rglob(".*shrink-*")]
