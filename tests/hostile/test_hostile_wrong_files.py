"""The wrong file in the right place: each is named for what it is, with the command that
reads it, exit 2, and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from tests.hostile import datasets as ds
from tests.hostile.harness import Case, run_case

USER = 2
WORDS_TEXT = "".join(f"img/{i}.png\t{w}\n" for i, w in enumerate(ds.WORDS))


def _write(name: str, data: bytes):
    def setup(tmp: Path) -> None:
        ds.dataset(tmp)
        ds.images_and_labels(tmp, "val.txt")
        (tmp / name).write_bytes(data)
    return setup


def _detection(tmp: Path) -> None:
    ds.dataset(tmp)
    boxes = [{"transcription": "สวัสดี", "points": [[0, 0], [50, 0], [50, 20], [0, 20]], "difficult": False}]
    (tmp / "Label.txt").write_text(f"img/0.png\t{json.dumps(boxes, ensure_ascii=False)}\n", encoding="utf-8")


def _png_as_labels(tmp: Path) -> None:
    ds.dataset(tmp)
    Image.new("RGB", (8, 8)).save(tmp / "oops.txt", format="PNG")


UTF16 = WORDS_TEXT.encode("utf-16")  # with BOM
UTF16_NOBOM = WORDS_TEXT.encode("utf-16-le")
UTF32 = WORDS_TEXT.encode("utf-32")
BOM8 = b"\xef\xbb\xbf" + WORDS_TEXT.encode("utf-8")
YAML_CFG = b"Global:\n  use_gpu: false\n  character_dict_path: dict.txt\nArchitecture:\n  model_type: rec\n"
JSON_CFG = b'{"Global": {"use_gpu": false}}\n'

CASES = [
    Case("validate-utf16", ["data", "validate", "l16.txt"], _write("l16.txt", UTF16), USER,
         ("l16.txt", "UTF-16", "iconv")),
    Case("validate-utf16-no-bom", ["data", "validate", "l16.txt"], _write("l16.txt", UTF16_NOBOM), USER,
         ("UTF-16",)),
    Case("validate-utf32", ["data", "validate", "l32.txt"], _write("l32.txt", UTF32), USER, ("UTF-32",)),
    Case("validate-png", ["data", "validate", "oops.txt"], _png_as_labels, USER, ("PNG image",)),
    Case("validate-detection", ["data", "validate", "Label.txt"], _detection, USER,
         ("detection label file", "rectrain data convert")),
    Case("dict-from-detection", ["data", "dict", "Label.txt", "-o", "d.txt"], _detection, USER,
         ("detection label file",)),
    Case("validate-empty", ["data", "validate", "empty.txt"], _write("empty.txt", b""), USER,
         ("empty", "no samples")),
    Case("validate-only-blank-lines", ["data", "validate", "blank.txt"], _write("blank.txt", b"\n\n\r\n"),
         USER, ("no samples",)),
    Case("validate-yaml-as-labels", ["data", "validate", "c.yml"], _write("c.yml", YAML_CFG), USER,
         ("YAML",)),
    Case("validate-dict-is-yaml", ["data", "validate", "labels.txt", "--dict", "c.yml"],
         _write("c.yml", YAML_CFG), USER, ("YAML", "dictionary")),
    Case("validate-dict-is-json", ["data", "validate", "labels.txt", "--dict", "c.json"],
         _write("c.json", JSON_CFG), USER, ("JSON",)),
    Case("validate-dict-is-utf16", ["data", "validate", "labels.txt", "--dict", "d16.txt"],
         _write("d16.txt", "a\nb\n".encode("utf-16")), USER, ("UTF-16",)),
    Case("validate-dict-is-labels", ["data", "validate", "labels.txt", "--dict", "val.txt"],
         _write("x", b""), USER, ("label file", "rectrain data dict")),
    Case("config-build-bom-labels", ["config", "build", "--base", "crnn-mv3", "--train-labels", "bom.txt",
                                     "--val-labels", "val.txt", "--dict", "dict.txt", "--device", "cpu",
                                     "-o", "c.yml"], _write("bom.txt", BOM8), USER,
         ("byte-order mark", "bom.txt:1", "Fix:")),
    Case("config-build-detection-labels", ["config", "build", "--base", "crnn-mv3", "--train-labels",
                                           "Label.txt", "--val-labels", "labels.txt", "--dict", "dict.txt",
                                           "--device", "cpu", "-o", "c.yml"], _detection, USER,
         ("detection label file",)),
    Case("split-utf16", ["data", "split", "l16.txt", "-o", "out"], _write("l16.txt", UTF16), USER,
         ("UTF-16",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_wrong_files(case: Case, tmp_path: Path) -> None:
    run_case(case, tmp_path)
