"""Metrics on plain strings (no engine): Thai combining marks count as characters."""

from __future__ import annotations

import pytest

from rectrain.model.scores import (
    DEL,
    INS,
    SUB,
    align,
    confusions,
    describe_char,
    edit_distance,
    normalized_edit_distance,
    text_metrics,
)

SAWASDEE = "สวัสดี"  # ส ว ั ส ด ี : 6 code points, two of them combining marks


def test_thai_marks_are_characters():
    assert len(SAWASDEE) == 6
    assert edit_distance(SAWASDEE, "สวสดี") == 1  # MAI HAN-AKAT dropped
    assert edit_distance(SAWASDEE, "สวัสดิ") == 1  # SARA II read as SARA I
    assert edit_distance("", SAWASDEE) == 6
    assert edit_distance(SAWASDEE, SAWASDEE) == 0
    assert edit_distance("ที่", "ท่ี") == 2  # same marks, other order: a real difference


def test_normalized_edit_distance_matches_engine_definition():
    # rapidfuzz Levenshtein.normalized_distance: distance / max(len)
    assert normalized_edit_distance("abc", "abd") == pytest.approx(1 / 3)
    assert normalized_edit_distance("", "") == 0.0
    assert normalized_edit_distance("", "ab") == 1.0
    assert normalized_edit_distance(SAWASDEE, "สวสดี") == pytest.approx(1 / 6)


def test_alignment_names_the_dropped_and_swapped_marks():
    ops = align(SAWASDEE, "สวสดิ")
    errors = [(op, r, h) for op, r, h in ops if op != "equal"]
    assert errors == [(DEL, "\u0e31", ""), (SUB, "\u0e35", "\u0e34")]
    assert [r for _, r, _ in ops if r] == list(SAWASDEE)
    assert align("", "ab") == [(INS, "", "a"), (INS, "", "b")]


def test_text_metrics_word_accuracy_cer_and_ned():
    pairs = [(SAWASDEE, SAWASDEE), (SAWASDEE, "สวสดี"), ("ไทย", ""), ("ok", "ok")]
    m = text_metrics(pairs)
    assert m.samples == 4 and m.correct == 2
    assert m.word_accuracy == pytest.approx(0.5)
    assert m.char_errors == 1 + 3
    assert m.reference_chars == 6 + 6 + 3 + 2
    assert m.cer == pytest.approx(4 / 17)
    assert m.norm_edit_dis == pytest.approx(1 - (0 + 1 / 6 + 1 + 0) / 4)


def test_spaces_ignored_like_the_engine_unless_asked():
    pairs = [("สวัสดี ครับ", "สวัสดีครับ")]
    assert text_metrics(pairs).word_accuracy == 1.0
    kept = text_metrics(pairs, ignore_space=False)
    assert kept.word_accuracy == 0.0 and kept.char_errors == 1


def test_empty_input_gives_zeros_not_errors():
    m = text_metrics([])
    assert (m.samples, m.word_accuracy, m.cer, m.norm_edit_dis) == (0, 0.0, 0.0, 0.0)


def test_confusions_most_frequent_first_with_code_points():
    pairs = [(SAWASDEE, "สวสดี"), ("สวัสดิ์", "สวสดิ์"), ("ดี", "ดิ")]
    top = confusions(pairs, top=5)
    assert (top[0].label, top[0].predicted, top[0].count) == ("\u0e31", "", 2)
    assert top[0].kind == DEL
    assert (top[1].label, top[1].predicted, top[1].count, top[1].kind) == ("\u0e35", "\u0e34", 1, SUB)
    d = top[0].as_dict()
    assert d["label_codepoints"] == ["U+0E31"] and d["predicted_codepoints"] == []
    assert "U+0E31 THAI CHARACTER MAI HAN-AKAT" in top[0].describe()
    assert "∅" in top[0].describe()


def test_describe_char_shows_combining_marks_on_a_carrier():
    text = describe_char("\u0e48")
    assert text.startswith("'◌\u0e48'") and "U+0E48 THAI CHARACTER MAI EK" in text
    assert describe_char("ก") == "'ก' U+0E01 THAI CHARACTER KO KAI"
    assert describe_char("") == "∅"


def test_pure_python_distance_equals_rapidfuzz():
    from rectrain.model import scores as metrics

    rapidfuzz = pytest.importorskip("rapidfuzz.distance")
    cases = [(SAWASDEE, "สวสดี"), ("ที่", "ท่ี"), ("", "abc"), ("น้ำ", "นํ้า"), ("kitten", "sitting")]
    for a, b in cases:
        assert metrics._edit_distance_py(a, b) == rapidfuzz.Levenshtein.distance(a, b) == edit_distance(a, b)
        assert len([op for op in align(a, b) if op[0] != "equal"]) == edit_distance(a, b)
