"""Image size limits (header read first, nothing past the decompression-bomb limit decoded)
and Unicode forms (labels and dictionary compared in the same form, the form named)."""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path

import pytest
from PIL import Image

from rectrain.data.images import BOMB_PIXELS, check_image, header_size
from rectrain.data.text import label_form, unicode_form
from rectrain.data.validate import validate_recognition_annotation_format
from tests.hostile.datasets import big_png


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"])
def test_header_size_without_decoding(fmt):
    buf = io.BytesIO()
    Image.new("RGB", (123, 45), "white").save(buf, format=fmt)
    assert header_size(buf.getvalue()) == (123, 45)


def test_a_decompression_bomb_is_named_and_never_decoded(tmp_path: Path):
    path = big_png(tmp_path / "huge.png", 20000, 20000)
    assert BOMB_PIXELS < 20000 * 20000
    code, detail, w, h = check_image(str(path))
    assert code == "huge-image" and (w, h) == (20000, 20000)
    assert "decompression-bomb" in detail and "not decoded" in detail


def test_a_page_sized_image_is_a_warning(tmp_path: Path):
    path = big_png(tmp_path / "page.png", 2480, 3508)
    code, detail, _, _ = check_image(str(path))
    assert code == "large-image" and "2480x3508" in detail


def test_forms():
    assert unicode_form("abc") == "either"
    assert unicode_form(["é", "a"]) == "NFC"
    assert unicode_form(["e", "\u0301"]) == "NFD"
    assert unicode_form(["é", "\u0301"]) == "mixed"
    assert unicode_form(list("สวัสดี")) == "either"
    assert label_form("café") == "NFC" and label_form(unicodedata.normalize("NFD", "café")) == "NFD"


def _files(tmp_path: Path, label_form_: str, dict_form: str):
    Image.new("RGB", (80, 32), "white").save(tmp_path / "a.png")
    Image.new("RGB", (80, 32), "white").save(tmp_path / "b.png")
    words = ["café", "naïve"]
    (tmp_path / "l.txt").write_text("".join(
        f"{n}\t{unicodedata.normalize(label_form_, w)}\n" for n, w in zip(["a.png", "b.png"], words)),
        encoding="utf-8")
    chars = sorted(set("".join(unicodedata.normalize(dict_form, w) for w in words)))
    (tmp_path / "d.txt").write_text("".join(c + "\n" for c in chars), encoding="utf-8")
    return validate_recognition_annotation_format(str(tmp_path / "l.txt"), dict_path=str(tmp_path / "d.txt"),
                                                  workers=1)


def test_nfd_labels_with_an_nfd_dictionary_get_no_unknown_character(tmp_path: Path):
    report = _files(tmp_path, "NFD", "NFD")
    assert "unknown-char" not in report.counts, report.summary()
    assert report.counts.get("not-nfc") == 2
    text = report.summary()
    assert "in Unicode NFD, not NFC" in text and "same decomposed form" in text
    assert report.stats["dictionary"]["form"] == "NFD"
    assert "dictionary: Unicode NFD" in text


def test_nfc_labels_with_an_nfd_dictionary_say_which_form_each_is_in(tmp_path: Path):
    report = _files(tmp_path, "NFC", "NFD")
    assert report.counts.get("unknown-char") == 2
    assert "the dictionary is in NFD, this label in NFC" in report.summary()
