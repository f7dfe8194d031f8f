from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PIL import Image

from rectrain.data.fonts import packaged_font_files, resolve_fonts
from rectrain.data.synth import NO_EFFECTS, needs_shaping, parse_effects, synthesize, thai_words
from rectrain.errors import DataError, UserError

WORDS = ["สวัสดี", "น้ำ", "ที่", "ปี่", "กรุงเทพ", "ภาษาไทย"]


def _digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((folder / "images").iterdir())}


def test_packaged_fonts_found_and_cover_thai():
    files = packaged_font_files()
    assert any("Sarabun" in f.name for f in files) and any("NotoSansThai" in f.name for f in files)
    for font in resolve_fonts(None):
        assert font.covers("สวัสดีน้ำที่ปี่ฎุ")


def test_synth_reproducible_across_workers(tmp_path):
    a = synthesize(WORDS, tmp_path / "a", 12, seed=7, workers=1)
    b = synthesize(WORDS, tmp_path / "b", 12, seed=7, workers=2)
    c = synthesize(WORDS, tmp_path / "c", 12, seed=8, workers=1)
    assert _digest(a) == _digest(b)
    assert (a / "labels.txt").read_text(encoding="utf-8") == (b / "labels.txt").read_text(encoding="utf-8")
    assert _digest(a) != _digest(c)
    lines = (a / "labels.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 12
    for line in lines:
        path, label = line.split("\t")
        assert label in WORDS
        with Image.open(a / path) as im:
            assert im.height == 32 and im.width >= 8


def test_clean_effects_black_on_white(tmp_path):
    out = synthesize(["กขค"], tmp_path / "o", 2, effects=NO_EFFECTS, workers=1)
    with Image.open(out / "images" / "0000000.png") as im:
        px = im.convert("L")
        assert px.getpixel((0, 0)) > 240  # white background
        assert px.getextrema()[0] < 60  # dark text


def test_font_coverage_refusal(tmp_path):
    import matplotlib

    # DejaVu Sans ships with matplotlib and has no Thai glyphs
    latin_only = [Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"]
    fonts = resolve_fonts([latin_only[0]])
    assert not fonts[0].covers("สวัสดี") and fonts[0].missing("สวัสดี")
    with pytest.raises(DataError):
        synthesize(["สวัสดี"], tmp_path / "x", 2, fonts=[latin_only[0]], workers=1)
    # mixed: Thai words go to the Thai font only, Latin words may use both
    out = synthesize(["สวัสดี", "hello"], tmp_path / "y", 6, fonts=[latin_only[0], packaged_font_files()[0]],
                     workers=1, effects=NO_EFFECTS)
    assert len((out / "labels.txt").read_text(encoding="utf-8").splitlines()) == 6


def test_needs_shaping_and_effects_parsing():
    assert needs_shaping("ที่") and needs_shaping("ปี") and needs_shaping("น้ำ")
    assert not needs_shaping("กา") and not needs_shaping("สวัสดี")
    assert parse_effects("none") == NO_EFFECTS
    e = parse_effects("blur,colors")
    assert e.blur > 0 and e.colors and e.noise == 0 and not e.background
    with pytest.raises(UserError):
        parse_effects("sparkles")


def test_thai_words_offline_and_seeded():
    w1 = thai_words(limit=50, max_len=6, seed=1)
    assert len(w1) == 50 and all(len(w) <= 6 for w in w1)
    assert w1 == thai_words(limit=50, max_len=6, seed=1)
    assert w1 != thai_words(limit=50, max_len=6, seed=2)
