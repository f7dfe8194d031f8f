"""Official dictionaries recognised by content; the stale Thai one is a warning without weights."""

from __future__ import annotations

import pytest

from rectrain.data.official_dicts import check_official, identify
from rectrain.data.validate import validate_recognition_annotation_format
from rectrain.errors import ConfigError


def test_current_and_stale_thai_are_told_apart(thai_dict, stale_thai_dict, tmp_path):
    cur, stale = identify(thai_dict), identify(stale_thai_dict)
    assert cur is not None and cur.status == "current" and cur.lines == 524
    assert stale is not None and stale.status == "stale" and stale.lines == 523
    # a copy with Windows line ends and a normalised ohm sign is still the same dictionary
    lines = thai_dict.read_text(encoding="utf-8").split("\n")[:-1]
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes("".join(x.replace("\u2126", "\u03a9") + "\r\n" for x in lines).encode())
    assert identify(crlf) == cur
    # one line changed: not the official file any more
    edited = tmp_path / "edited.txt"
    edited.write_text("\n".join(lines[:-1] + ["x"]) + "\n", encoding="utf-8")
    assert identify(edited) is None
    # a stale copy that also differs elsewhere is still recognised by its 'ωก' line
    stale_lines = stale_thai_dict.read_text(encoding="utf-8").split("\n")[:-1]
    other = tmp_path / "stale2.txt"
    other.write_text("\n".join(stale_lines + ["x"]) + "\n", encoding="utf-8")
    assert identify(other) == stale


def test_stale_is_an_error_with_weights_and_a_warning_without(stale_thai_dict, thai_dict):
    with pytest.raises(ConfigError) as err:
        check_official(stale_thai_dict, pretrained=True)
    msg = str(err.value)
    assert "stale" in msg and "ppocrv5_th_dict.txt" in msg and "526" in msg and "U+0E01" in msg
    known, warnings = check_official(stale_thai_dict, pretrained=False)
    assert known.status == "stale" and len(warnings) == 1
    assert check_official(thai_dict, pretrained=True)[1] == []


def test_data_validate_names_the_dictionary(stale_thai_dict, thai_dict, tmp_path):
    labels = tmp_path / "l.txt"
    labels.write_text("a.png\tกา\n", encoding="utf-8")
    rep = validate_recognition_annotation_format([str(labels)], dict_path=str(stale_thai_dict),
                                                 check_images=False, workers=1)
    assert rep.counts.get("dict-stale-official") == 1
    assert "stale" in rep.summary() and "dictionary: the official" in rep.summary()
    rep = validate_recognition_annotation_format([str(labels)], dict_path=str(thai_dict),
                                                 check_images=False, workers=1)
    assert "dict-stale-official" not in rep.counts
    assert "524 lines, current" in rep.summary()


def test_data_dict_with_a_base_says_how_to_keep_the_head(stale_thai_dict, thai_dict, tmp_path, capsys):
    from rectrain.cli.main import main

    labels = tmp_path / "l.txt"
    labels.write_text("a.png\tขวดฃวด\n", encoding="utf-8")
    assert main(["data", "dict", str(labels), "--base", str(thai_dict), "-o",
                 str(tmp_path / "new.txt")]) == 0
    out = capsys.readouterr().out
    assert "1 new character(s) appended: ฃ" in out and "ckpt extend-dict" in out
    assert main(["data", "dict", str(labels), "--base", str(stale_thai_dict), "-o",
                 str(tmp_path / "new2.txt")]) == 0
    assert "stale revision" in capsys.readouterr().out
