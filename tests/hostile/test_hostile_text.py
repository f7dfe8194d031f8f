"""Issue 21, text hygiene in one place: invisible and format characters (zero-width space U+200B,
word joiner U+2060, a BOM inside text, bidi controls, soft hyphen, line separators) are
reported by every command that reads labels or dictionaries, naming the file, the line and the
code point; in a dictionary they are an error (an invisible class the model learns to output).
With the first campaign's leftovers: NIKHAHIT (U+0E4D, half of a decomposed SARA AM) missing
from the dictionary is not exit 0, and a TIS-620 label file or dictionary is named by its
encoding (not "characters not in the dictionary")."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import pytest

from tests.hostile import datasets as ds
from tests.hostile import world
from tests.hostile.harness import Case, Result, raise_failure

USER = 2
CLEAN = ["สวัสดี", "ไทย", "abc", "ok", "บ้าน", "น้ำ", "12", "ข้าว"]
ZWSP, WJ, BOM, RLO, RLM, LRI, SHY, ZWJ, LSEP = ("\u200b", "\u2060", "\ufeff", "\u202e", "\u200f", "\u2066",
                                               "\u00ad", "\u200d", "\u2028")


def _with(char: str, line: int = 3) -> list:
    """The clean words, the word on ``line`` (1-based) with ``char`` inside it."""
    words = list(CLEAN)
    w = words[line - 1]
    words[line - 1] = w[:2] + char + w[2:]
    return words


def _labels(words: Sequence[str], dict_words: Sequence[str] = CLEAN, extra_dict: str = "",
            name: str = "labels.txt") -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        ds.images_and_labels(tmp, name, words=words)
        ds.images_and_labels(tmp, "val.txt", words=CLEAN)
        ds.dictionary(tmp, words=dict_words)
        if extra_dict:
            with open(tmp / "dict.txt", "a", encoding="utf-8") as fh:
                fh.write(extra_dict + "\n")
    return setup


def _append_to_dict(char: str) -> Callable[[Path], None]:
    def go(tmp: Path) -> None:
        with open(tmp / "dict.txt", "a", encoding="utf-8") as fh:
            fh.write(char + "\n")
    return go


def _new_dict_with(char: str) -> Callable[[Path], None]:
    """The world's run and data, and new.txt: its dictionary plus ``char``."""
    def go(tmp: Path) -> None:
        world.place(tmp, "data", "run")
        old = (tmp / "data" / "dict.txt").read_text(encoding="utf-8")
        (tmp / "new.txt").write_text(old + char + "\n", encoding="utf-8")
    return go


def _then(first: Callable[[Path], None], second: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        first(tmp)
        second(tmp)
    return setup


def _no_invisible_in(rel: str, char: str) -> Callable[[Path, Result], None]:
    def check(tmp: Path, result: Result) -> None:  # noqa: ARG001
        p = tmp / rel
        assert not p.exists() or char not in p.read_text(encoding="utf-8"), \
            f"{rel} holds U+{ord(char):04X}: an invisible class"
    return check


def _samples(n: int) -> Callable[[Path, Result], None]:
    def check(tmp: Path, result: Result) -> None:  # noqa: ARG001
        assert f"{n} samples" in result.output, f"the label file has {n} lines\n{result.output[-1500:]}"
    return check


def _not_called_unknown(tmp: Path, result: Result) -> None:  # noqa: ARG001
    assert "not in the dictionary" not in result.output, "a wrong encoding reported as unknown characters"


def _tis620(name: str, text: str) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        ds.dataset(tmp)
        ds.images_and_labels(tmp, "val.txt")
        (tmp / name).write_bytes(text.encode("tis-620"))
    return setup


def _world_labels(words: Sequence[str]) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        world.place(tmp, "data", "model")
        lines = (tmp / "data" / "val.txt").read_text(encoding="utf-8").splitlines()
        lines = [ln.split("\t")[0] + "\t" + w for ln, w in zip(lines, list(words) * 2)]
        (tmp / "data" / "inv.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return setup


def R(id: str, argv, setup, says, code=USER, **kw) -> Case:  # noqa: A002, ANN001
    return Case(id, argv, setup, code, tuple(says) + ("Fix:",), leaves_nothing=kw.pop("leaves_nothing",
                                                                                      True), **kw)


def Report(id: str, argv, setup, says, code=(0, 1),
           **kw) -> Case:  # noqa: A002, ANN001 - reported, exit as findings
    return Case(id, argv, setup, code, tuple(says), **kw)


VALIDATE = ["data", "validate", "labels.txt", "--workers", "1"]
VALIDATE_D = VALIDATE + ["--dict", "dict.txt"]
BUILD = ["config", "build", "--base", "crnn-mv3", "--train-labels", "labels.txt", "--val-labels", "val.txt",
         "--dict", "dict.txt", "--device", "cpu", "--batch-size", "4", "-o", "c.yml"]
BUILT = ("c.yml", "c.base.yml", "c.diff.md")
TIS_LABELS = "".join(f"img/{i}.png\t{w}\n" for i, w in enumerate(ds.WORDS))
ENCODING = ("TIS-620", "TIS620", "cp874", "windows-874", "Windows-874")
NIKHAHIT_WORDS = ["ทํา", "น้ํา", "ok", "abc"]  # ํ (U+0E4D) + า: a decomposed SARA AM (ำ U+0E33)
NIKHAHIT_DICT = sorted(set("".join(NIKHAHIT_WORDS).replace("\u0e4d", "")) | {"\u0e33"})

CASES = [
    # labels: reported, naming the file, line and code point
    Report("validate-zwsp-in-label", ["data", "validate", "labels.txt", "--workers", "1"],
           _labels(_with(ZWSP)),
           ("U+200B", "labels.txt:3")),
    Report("validate-word-joiner-in-label", VALIDATE, _labels(_with(WJ, 5)), ("U+2060", "labels.txt:5")),
    Report("validate-bom-inside-label", VALIDATE, _labels(_with(BOM, 4)), ("U+FEFF", "labels.txt:4")),
    Report("validate-rlo-in-label", VALIDATE, _labels(_with(RLO, 2)), ("U+202E", "labels.txt:2")),
    Report("validate-rlm-in-label", VALIDATE, _labels(_with(RLM, 6)), ("U+200F", "labels.txt:6")),
    Report("validate-lri-in-label", VALIDATE, _labels(_with(LRI, 7)), ("U+2066", "labels.txt:7")),
    Report("validate-soft-hyphen-in-label", VALIDATE, _labels(_with(SHY, 1)), ("U+00AD", "labels.txt:1")),
    Report("validate-zwj-in-thai-label", VALIDATE, _labels(_with(ZWJ, 8)), ("U+200D", "labels.txt:8")),
    Report("validate-line-separator-in-label", VALIDATE, _labels(_with(LSEP, 2)), ("U+2028", "labels.txt:2"),
           check=_samples(8)),
    # a dictionary holding one: an error, wherever the dictionary is read
    R("validate-dict-holds-zwsp", VALIDATE_D, _labels(_with(ZWSP), CLEAN, extra_dict=ZWSP), ("U+200B",
                                                                                             "dict.txt"),
      code=(1, USER), leaves_nothing=False),
    R("dict-from-labels-with-zwsp", ["data", "dict", "labels.txt", "-o", "d.txt"], _labels(_with(ZWSP)),
      ("U+200B", "labels.txt:3"), code=(0, USER), leaves_nothing=False, may_change=("d.txt",),
      check=_no_invisible_in("d.txt", ZWSP)),
    R("dict-base-holds-word-joiner", ["data", "dict", "labels.txt", "--base", "dict.txt", "-o", "d.txt"],
      _labels(CLEAN, extra_dict=WJ), ("U+2060", "dict.txt")),
    R("build-dict-holds-zwsp", BUILD, _labels(CLEAN, extra_dict=ZWSP), ("U+200B", "dict.txt")),
    R("build-dict-holds-rlm", BUILD, _labels(CLEAN, extra_dict=RLM), ("U+200F", "dict.txt")),
    R("check-dict-holds-bom-inside", ["config", "check", "train.yml"],
      _then(ds.training_setup, _append_to_dict(BOM)),
      ("U+FEFF", "dict.txt")),
    R("train-dict-holds-word-joiner", ["train", "--config", "train.yml", "--run-dir", "run", "--device",
                                       "cpu", "--display", "plain", "--max-steps", "2", "--no-tensorboard"],
      _then(ds.training_setup, _append_to_dict(WJ)),
      ("U+2060", "dict.txt")),
    R("extend-dict-new-dict-adds-zwsp", ["ckpt", "extend-dict", "--pretrained",
                                         "run/checkpoints/best_accuracy.pdparams", "--base-dict",
                                         "data/dict.txt", "--dict", "new.txt", "-o", "g.pdparams"],
      _new_dict_with(ZWSP),
      ("U+200B", "new.txt")),
    # other readers of labels
    Report("build-labels-with-zwsp", BUILD, _labels(_with(ZWSP)), ("U+200B", "labels.txt:3"), code=(0, USER),
           may_change=BUILT),
    Report("report-labels-with-zwsp", ["data", "report", "labels.txt", "-o", "rep", "--samples", "2"],
           _labels(_with(ZWSP)), ("U+200B", "labels.txt:3"), code=(0, 1, USER), may_change=("rep/",)),
    Report("split-labels-with-word-joiner", ["data", "split", "labels.txt", "-o", "out"], _labels(_with(WJ)),
           ("U+2060", "labels.txt:3"), code=(0, USER), may_change=("out/",)),
    Report("evaluate-labels-with-zwsp", ["evaluate", "--model", "model", "--labels", "data/inv.txt",
                                         "--device",
                                         "cpu"], _world_labels(["ok" + ZWSP, "abc", "ไทย"]),
           ("U+200B", ("invisible", "zero-width", "format character")), code=(0, 1, USER)),
    # leftovers: NIKHAHIT, TIS-620
    R("validate-nikhahit-missing-from-dict", ["data", "validate", "labels.txt", "--dict", "dict.txt",
                                              "--workers",
                                              "1"], _labels(NIKHAHIT_WORDS, NIKHAHIT_DICT), ("U+0E4D",),
      code=(1, USER), leaves_nothing=False),
    R("validate-tis620-labels", ["data", "validate", "tis.txt", "--dict", "dict.txt"], _tis620("tis.txt",
                                                                                               TIS_LABELS),
      ("tis.txt", ENCODING), code=(1, USER), leaves_nothing=False, check=_not_called_unknown),
    R("dict-tis620-labels", ["data", "dict", "tis.txt", "-o", "d.txt"], _tis620("tis.txt", TIS_LABELS),
      ("tis.txt", ENCODING)),
    R("build-tis620-train-labels", BUILD[:5] + ["tis.txt"] + BUILD[6:], _tis620("tis.txt", TIS_LABELS),
      ("tis.txt", ENCODING)),
    R("validate-tis620-dict", ["data", "validate", "labels.txt", "--no-images", "--dict", "tdict.txt"],
      _tis620("tdict.txt", "".join(c + "\n" for c in sorted(set("".join(ds.WORDS))))), ("tdict.txt",
                                                                                        ENCODING)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_text(case: Case, case_results) -> None:  # noqa: ANN001
    raise_failure(case_results, case)
