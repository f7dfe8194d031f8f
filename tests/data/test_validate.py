from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from rectrain.cli.main import main
from rectrain.data.validate import validate_recognition_annotation_format
from rectrain.errors import DataError

# (line bytes, expected codes). Every line uses its own image so no duplicates arise by accident.
CORPUS = [
    (b"\xef\xbb\xbfimg/l01.png\tabc\n", ["bom"]),
    (b"img/l02.png\tab\r\n", ["crlf"]),
    (b"\n", ["blank-line"]),
    (b"img/l04.png abc\n", ["no-tab"]),
    (b"img/l05.png\tab\tc\n", ["extra-tab"]),
    (b"img/l06.png\t\n", ["empty-label"]),
    (b"img/l07.png\tab \n", ["whitespace-edge", "space-not-in-dict"]),
    (b"../outside.png\tab\n", ["path-escape"]),
    (b"/etc/passwd\tab\n", ["path-escape"]),
    (b"img/missing.png\tab\n", ["missing-image"]),
    (b"img/zero.png\tab\n", ["unreadable-image"]),
    (b"img/text.png\tab\n", ["unreadable-image"]),
    (b"img/trunc.png\tab\n", ["unreadable-image"]),
    (b"img/tiny.png\tab\n", ["tiny-image"]),
    (b"img/l15.png\tcab\n", []),
    (b"img/l15.png\tcab\n", ["duplicate"]),
    (b"img/l17.png\tcab\n", []),
    (b"img/l17.png\tbac\n", ["conflicting-label"]),
    (b"img/l19.png\tabX\n", ["unknown-char"]),
    (b"img/l20.png\t" + b"a" * 30 + b"\n", ["too-long"]),
    ("img/l21.png\tน\u0e4d\u0e32\n".encode(), ["not-nfc", "dropped-as-written"]),  # NIKHAHIT dropped
    ("img/l22.png\tก\u0e48\u0e35\n".encode(), ["not-nfc"]),
    (b"img/l23.png\ta\xffb\n", ["not-utf8"]),
    (b"img/l24.png\ta b\n", ["space-not-in-dict"]),
    ("img/l25.png\tน้ำกี่\n".encode(), []),
    (b"img/l26.png\tcba", []),  # no final newline
]
DICT = "a\nb\nc\nน\nำ\nก\nี\n่\n้\n"
IMAGES = ["l01", "l02", "l04", "l05", "l06", "l07", "l15", "l17", "l19", "l20", "l21", "l22", "l23", "l24",
          "l25", "l26"]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    img = tmp_path / "img"
    img.mkdir()
    for name in IMAGES:
        Image.new("RGB", (60, 20), "white").save(img / f"{name}.png")
    Image.new("RGB", (3, 3)).save(img / "tiny.png")
    (img / "zero.png").write_bytes(b"")
    (img / "text.png").write_text("hello, not an image")
    data = (img / "l01.png").read_bytes()
    (img / "trunc.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "labels.txt").write_bytes(b"".join(line for line, _ in CORPUS))
    (tmp_path / "dict.txt").write_text(DICT, encoding="utf-8")
    return tmp_path


def _expected():
    exp = {}
    for no, (_, codes) in enumerate(CORPUS, start=1):
        for c in codes:
            exp.setdefault(c, []).append(no)
    return exp


@pytest.mark.parametrize("workers", [1, 2])
def test_every_defect_reported_with_count_and_line(corpus, workers):
    rep = validate_recognition_annotation_format(
        corpus / "labels.txt", dict_path=corpus / "dict.txt", max_text_length=25, workers=workers,
        json_out=corpus / "r.json", write_clean=corpus / "clean.txt", progress=False)
    got = {}
    for f in rep.findings:
        got.setdefault(f.code, []).append(f.line)
    assert got == _expected()
    assert rep.counts == {c: len(v) for c, v in _expected().items()}
    assert rep.samples == len(CORPUS) - 1  # the blank line is not a sample
    assert rep.images_checked == len(CORPUS) - 1 - 4  # minus blank, not-utf8, no-tab, 2 path-escapes
    assert not rep.ok
    data = json.loads((corpus / "r.json").read_text(encoding="utf-8"))
    assert data["counts"] == rep.counts
    assert data["errors"] == rep.errors and data["warnings"] == rep.warnings
    assert {"code", "file", "line", "message", "fix"} <= set(data["findings"][0])
    unknown = [f for f in rep.findings if f.code == "unknown-char"][0]
    assert "U+0058" in unknown.message
    dup = [f for f in data["findings"] if f["code"] == "duplicate"][0]
    assert dup["value"] == "img/l15.png\tcab" and "line 15" in dup["message"]
    sara_am = [f for f in data["findings"] if f["code"] == "not-nfc"][0]
    assert sara_am["value_codepoints"] == "U+0E19 U+0E4D U+0E32"
    # the clean file: every line without an error, normalized, no BOM/CR
    clean = (corpus / "clean.txt").read_text(encoding="utf-8").splitlines()
    assert clean == ["img/l01.png\tabc", "img/l02.png\tab", "img/l15.png\tcab", "img/l15.png\tcab",
                     "img/l17.png\tcab", "img/l21.png\tนำ", "img/l22.png\tกี่", "img/l25.png\tน้ำกี่",
                     "img/l26.png\tcba"]
    assert b"\r" not in (corpus / "clean.txt").read_bytes()


def test_clean_file_validates_clean(corpus):
    validate_recognition_annotation_format(corpus / "labels.txt", dict_path=corpus / "dict.txt",
                                           write_clean=corpus / "clean.txt", progress=False)
    rep = validate_recognition_annotation_format(corpus / "clean.txt", dict_path=corpus / "dict.txt",
                                                 progress=False)
    assert rep.ok
    assert rep.counts == {"duplicate": 1}


def test_official_thai_dict_findings_are_warnings(tmp_path, thai_dict, stale_thai_dict):
    Image.new("RGB", (60, 32), "white").save(tmp_path / "a.png")
    (tmp_path / "l.txt").write_text("a.png\tกสวัสดี\n", encoding="utf-8")
    rep = validate_recognition_annotation_format(tmp_path / "l.txt", dict_path=thai_dict, progress=False)
    assert rep.ok  # the current file: ก has its own line, only the two duplicates are reported
    assert "dict-multi-char" not in rep.counts and rep.counts["dict-duplicate"] == 2
    rep = validate_recognition_annotation_format(tmp_path / "l.txt", dict_path=stale_thai_dict,
                                                 progress=False)
    assert rep.counts["dict-multi-char"] == 1 and rep.counts["dict-duplicate"] == 2
    assert rep.counts["unknown-char"] == 1  # the stale file drops ก from the label


def test_cli_exit_codes(corpus, capsys):
    assert main(["data", "validate", str(corpus / "labels.txt"), "--dict", str(corpus / "dict.txt")]) == 1
    out = capsys.readouterr().out
    assert "unknown-char" in out and "labels.txt:19" in out
    (corpus / "ok.txt").write_text("img/l15.png\tcab\n", encoding="utf-8")
    assert main(["data", "validate", str(corpus / "ok.txt"), "--dict", str(corpus / "dict.txt")]) == 0
    assert main(["data", "validate", str(corpus / "nope.txt")]) == 2
    (corpus / "bad.txt").write_bytes(b"a\n\xff\n")
    assert main(["data", "validate", str(corpus / "ok.txt"), "--dict", str(corpus / "bad.txt")]) == 2


def test_images_root_and_no_images(corpus):
    sub = corpus / "labels"
    sub.mkdir()
    (sub / "l.txt").write_text("img/l15.png\tcab\nimg/none.png\tabc\n", encoding="utf-8")
    rep = validate_recognition_annotation_format(sub / "l.txt", images_root=corpus, progress=False)
    assert rep.counts == {"missing-image": 1}
    rep = validate_recognition_annotation_format(sub / "l.txt", check_images=False, progress=False)
    assert rep.counts == {} and rep.images_checked == 0


def test_multihead_length_and_findings_cap(tmp_path):
    Image.new("RGB", (60, 20), "white").save(tmp_path / "a.png")
    lines = ["a.png\t" + "a" * n + "\n" for n in (23, 24, 25, 26)]
    (tmp_path / "l.txt").write_text("".join(lines), encoding="utf-8")
    (tmp_path / "d.txt").write_text("a\n", encoding="utf-8")
    ctc = validate_recognition_annotation_format(tmp_path / "l.txt", dict_path=tmp_path / "d.txt",
                                                 max_text_length=25, progress=False, workers=1)
    assert [f.line for f in ctc.findings if f.code == "too-long"] == [4]
    mh = validate_recognition_annotation_format(tmp_path / "l.txt", dict_path=tmp_path / "d.txt",
                                                max_text_length=25, multihead=True, progress=False,
                                                workers=1, max_findings_per_code=2)
    assert mh.counts["too-long"] == 3  # 24, 25 (NRTR branch) and 26 (CTC)
    assert len([f for f in mh.findings if f.code == "too-long"]) == 2
    assert mh.omitted_findings >= 1


def test_list_form_paths_and_dict_cli(tmp_path, capsys):
    Image.new("RGB", (60, 20), "white").save(tmp_path / "a.png")
    (tmp_path / "l.txt").write_text('["a.png", "b.png"]\tกา\n', encoding="utf-8")
    rep = validate_recognition_annotation_format(tmp_path / "l.txt", progress=False, workers=1)
    assert rep.counts == {"missing-image": 1} and rep.images_checked == 2
    assert main(["data", "dict", str(tmp_path / "l.txt"), "-o", str(tmp_path / "d.txt")]) == 0
    assert (tmp_path / "d.txt").read_text(encoding="utf-8") == "ก\nา\n"
    (tmp_path / "base.txt").write_text("า\nx\n", encoding="utf-8")
    assert main(["data", "dict", str(tmp_path / "l.txt"), "-o", str(tmp_path / "d2.txt"), "--base",
                 str(tmp_path / "base.txt")]) == 0
    assert (tmp_path / "d2.txt").read_text(encoding="utf-8") == "า\nx\nก\n"
    assert "1 new character" in capsys.readouterr().out


def test_random_bytes_never_crash(tmp_path):
    import random

    rng = random.Random(0)
    # NUL bytes make a binary file, refused as a whole before any line is read (tests/hostile)
    alphabet = [b"\t", b"\n", b"\r", b"\xef\xbb\xbf", b"\xff", b"\x01", b"a.png", b"../", b"/", b"[", b"]",
                b'"', "ก".encode(), "\u0e4d".encode(), b" ", b"x", b"\xe0\xb8"]
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    for i in range(20):
        blob = b"".join(rng.choice(alphabet) for _ in range(400))
        (tmp_path / f"l{i}.txt").write_bytes(blob)
    files = [tmp_path / f"l{i}.txt" for i in range(20)]
    rep = validate_recognition_annotation_format(files, dict_path=None, max_text_length=5, workers=2,
                                                 write_clean=tmp_path / "clean.txt", progress=False)
    assert rep.samples > 0 and rep.errors > 0
    if not (tmp_path / "clean.txt").read_bytes().strip():  # no line survived: an empty file is an error
        with pytest.raises(DataError, match="no samples"):
            validate_recognition_annotation_format(tmp_path / "clean.txt", progress=False, workers=1)
        return
    clean = validate_recognition_annotation_format(tmp_path / "clean.txt", max_text_length=5, progress=False,
                                                   workers=1)
    assert clean.counts.get("not-utf8", 0) == 0 and clean.counts.get("no-tab", 0) == 0
