"""Error analysis (aligned edit operations, Thai character classes, CER by length) and the
``evaluate --report DIR`` page, on a real exported model (the tiny run of conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from rectrain.cli.main import main
from rectrain.model.error_analysis import analyse_errors, char_class


@pytest.mark.parametrize("ch, cls", [
    ("ก", "thai_consonant"), ("ฮ", "thai_consonant"), ("เ", "thai_vowel_leading"),
    ("ไ", "thai_vowel_leading"), ("า", "thai_vowel_following"), ("ำ", "thai_vowel_following"),
    ("ะ", "thai_vowel_following"), ("ฤ", "thai_vowel_following"), ("ั", "thai_vowel_above"),
    ("ี", "thai_vowel_above"), ("็", "thai_vowel_above"), ("ุ", "thai_vowel_below"),
    ("ู", "thai_vowel_below"), ("่", "thai_tone_mark"), ("๋", "thai_tone_mark"),
    ("์", "thai_other_mark"), ("๕", "digit"), ("7", "digit"), ("ๆ", "thai_other"), ("x", "latin"),
    (" ", "space"), ("é", "other"),
])
def test_character_classes(ch: str, cls: str) -> None:
    assert char_class(ch) == cls


def test_errors_from_aligned_operations() -> None:
    pairs = [
        ("สวัสดี", "สวสดี"),  # MAI HAN-AKAT (vowel above) missing
        ("ที่", "ทิ่"),  # SARA II read as SARA I (vowel above -> vowel above)
        ("ไก่", "ไก้"),  # MAI EK read as MAI THO (tone mark)
        ("ok", "ok"),
        ("42", "421"),  # an extra digit
    ]
    a = analyse_errors(pairs)
    assert a.samples == 5
    assert dict(a.deletions) == {"ั": 1}
    assert dict(a.substitutions) == {("ี", "ิ"): 1, ("่", "้"): 1}
    assert dict(a.insertions) == {"1": 1}
    by = {name: s for name, s in a.classes.items()}
    assert by["thai_vowel_above"].reference == 3 and by["thai_vowel_above"].errors == 2
    assert by["thai_vowel_above"].error_rate == pytest.approx(2 / 3)
    assert by["thai_tone_mark"].substituted == 1 and by["thai_tone_mark"].reference == 2
    assert by["digit"].inserted == 1 and by["digit"].errors == 0
    assert by["thai_consonant"].errors == 0 and by["thai_consonant"].reference == 6
    assert a.class_confusions[("thai_tone_mark", "thai_tone_mark")] == 1
    assert a.class_confusions[("thai_vowel_above", "(missing)")] == 1
    lengths = {b.length: b for b in a.lengths.values()}
    assert lengths[2].samples == 2 and lengths[2].correct == 1 and lengths[2].cer == pytest.approx(1 / 4)
    assert lengths[6].cer == pytest.approx(1 / 6) and lengths[6].word_accuracy == 0
    data = a.as_dict()
    assert data["operations"] == {"substitutions": 2, "deletions": 1, "insertions": 1}
    assert {op["kind"] for op in data["top_operations"]} == {"sub", "del", "ins"}
    assert a.has_thai


@pytest.mark.slow
def test_evaluate_report_on_a_real_exported_model(exported: Path, tiny_run: dict, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    out, js = tmp_path / "report", tmp_path / "eval.json"
    code = main(["evaluate", "--model", str(exported), "--labels", str(tiny_run["labels"]),
                 "--report", str(out), "--json", str(js), "--device", "cpu"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "error report:" in printed and "word accuracy" in printed
    assert json.loads(js.read_text(encoding="utf-8"))["total"] == 18  # --json is kept
    for name in ("confusions.png", "errors_by_class.png", "cer_by_length.png", "worst.png"):
        with Image.open(out / name) as img:
            assert img.size[0] >= 400, name
    data = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    errors = data["errors"]
    ops = errors["operations"]
    # one aligned operation per unit of edit distance: the analysis adds up to the CER
    assert ops["substitutions"] + ops["deletions"] + ops["insertions"] == data["char_errors"] > 0
    assert sum(b["char_errors"] for b in errors["by_length"]) == data["char_errors"]
    assert sum(b["samples"] for b in errors["by_length"]) == data["total"]
    classes = {c["class"]: c for c in errors["by_class"]}
    # the tiny run's words: สวัสดี ไทย กา abc 12 ok
    assert {"thai_consonant", "thai_vowel_above", "thai_vowel_leading", "thai_vowel_following", "latin",
            "digit"} <= set(classes)
    assert sum(c["reference_chars"] for c in classes.values()) == data["reference_chars"]
    md = (out / "index.md").read_text(encoding="utf-8")
    assert "## Errors by character class" in md and "![Errors by label length](cer_by_length.png)" in md
    assert "Thai vowels above" in md and "U+0E" in md  # characters named with their code points
    page = (out / "index.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<img src='confusions.png'" in page
