from __future__ import annotations

from pathlib import Path

from rectrain.data.dictionary import build_dictionary, check_dictionary, read_dictionary


def _engine_chars(path: Path, use_space_char: bool = False):
    """The engine's own reading (BaseRecLabelEncode), re-stated to compare against."""
    out = []
    with open(path, "rb") as fin:
        for line in fin.readlines():
            out.append(line.decode("utf-8").strip("\n").strip("\r\n"))
    if use_space_char:
        out.append(" ")
    return out


def test_official_thai_dict_read_like_the_engine(thai_dict):
    """The current upstream file: 524 lines, ก and ω on lines of their own; with the space
    class and the CTC blank that is the released model's 526 output classes."""
    d = read_dictionary(thai_dict)
    assert d.chars == _engine_chars(thai_dict)
    assert len(d.chars) == 524
    assert d.num_classes_ctc == 525
    assert d.chars[239] == ""  # line 240 is empty and still a class
    assert d.chars[440] == "ω" and d.chars[441] == "ก"
    assert all(len(c) <= 1 for c in d.chars)
    assert "ก" in d.encodable
    d2 = read_dictionary(thai_dict, use_space_char=True)
    assert d2.chars[-1] == " " and len(d2.chars) == 525
    assert d2.num_classes_ctc == 526  # the released th_PP-OCRv5_mobile_rec head


def test_stale_thai_dict_read_like_the_engine(stale_thai_dict):
    d = read_dictionary(stale_thai_dict)
    assert d.chars == _engine_chars(stale_thai_dict)
    assert len(d.chars) == 523
    assert d.num_classes_ctc == 524
    assert d.chars[239] == ""
    assert "ωก" in d.chars


def test_official_thai_dict_quirks_reported(thai_dict):
    by_code = {}
    for f in check_dictionary(thai_dict):
        by_code.setdefault(f.code, []).append(f.line)
    assert by_code["dict-empty-line"] == [240]
    assert by_code["dict-duplicate"] == [248, 379]
    assert "dict-multi-char" not in by_code
    assert "dict-crlf" not in by_code


def test_stale_thai_dict_quirks_reported(stale_thai_dict):
    findings = check_dictionary(stale_thai_dict)
    by_code = {}
    for f in findings:
        by_code.setdefault(f.code, []).append(f.line)
    assert by_code["dict-multi-char"] == [441]
    assert by_code["dict-empty-line"] == [240]
    assert by_code["dict-duplicate"] == [248, 379]
    assert "dict-crlf" not in by_code
    assert all(f.fix for f in findings)
    multi = [f for f in findings if f.code == "dict-multi-char"][0].message
    assert "U+03C9" in multi
    assert "U+0E01" in multi and "no line of their own" in multi  # KO KAI is only inside 'ωก'
    assert "ก" not in read_dictionary(stale_thai_dict).encodable


def test_engine_index_last_duplicate_wins(tmp_path):
    p = tmp_path / "d.txt"
    p.write_bytes(b"a\r\nb\n\nab\n \t\na\n")
    d = read_dictionary(p)
    assert d.chars == ["a", "b", "", "ab", " \t", "a"]
    assert d.index["a"] == 6  # blank is 0, the last 'a' (line 6) wins
    codes = sorted((f.code, f.line) for f in d.findings)
    assert ("dict-crlf", 1) in codes
    assert ("dict-empty-line", 3) in codes
    assert ("dict-multi-char", 4) in codes
    assert ("dict-whitespace", 5) in codes
    assert ("dict-duplicate", 6) in codes
    assert d.encodable == frozenset({"a", "b"})
    assert p.read_bytes() == b"a\r\nb\n\nab\n \t\na\n"  # never repaired


def test_build_dictionary_plain_and_with_base(tmp_path, thai_dict):
    labels = tmp_path / "l.txt"
    labels.write_text("a.png\tสวัสดี\nb.png\tค่ะ 9\n", encoding="utf-8")
    out = tmp_path / "dict.txt"
    res = build_dictionary([labels], out=out)
    assert res.has_space
    assert res.chars == sorted(set("สวัสดีค่ะ9"), key=ord)
    assert out.read_text(encoding="utf-8").splitlines() == res.chars
    out2 = tmp_path / "dict2.txt"
    labels.write_text("a.png\tสวัสดี€\n", encoding="utf-8")
    res2 = build_dictionary([labels], base=thai_dict, out=out2)
    base = read_dictionary(thai_dict).chars
    assert res2.added == ["€"] if "€" not in base else res2.added == []
    assert read_dictionary(out2).chars[:len(base)] == base  # quirks and order kept
    assert len(read_dictionary(out2).chars) == len(base) + len(res2.added)
