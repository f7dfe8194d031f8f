"""Outputs over inputs, --force over folders rectrain did not write: never lose a user's file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.hostile import datasets as ds
from tests.hostile.harness import Case, run_case

USER = 2


def _scratch_with_run(tmp: Path) -> None:
    ds.fake_run(tmp)
    (tmp / "notes.txt").write_text("my unrelated notes\n", encoding="utf-8")


def _model_folder_with_user_file(tmp: Path) -> None:
    ds.fake_run(tmp)
    (tmp / "model").mkdir()
    (tmp / "model" / "model.json").write_text('{"files": {"inference.json": "x"}}', encoding="utf-8")
    (tmp / "model" / "inference.json").write_text("{}", encoding="utf-8")
    (tmp / "model" / "my-thesis.docx").write_text("irreplaceable", encoding="utf-8")


def _plain_folder(tmp: Path) -> None:
    ds.fake_run(tmp)
    (tmp / "photos").mkdir()
    (tmp / "photos" / "cat.jpg").write_bytes(b"\xff\xd8 not really")


def _train_txt(tmp: Path) -> None:
    ds.images_and_labels(tmp, "train.txt")


def _link_to_labels(tmp: Path) -> None:
    ds.dataset(tmp)
    os.symlink("labels.txt", tmp / "link.txt")


def _config_inputs(tmp: Path) -> None:
    ds.dataset(tmp)
    ds.images_and_labels(tmp, "val.txt")


def _config(argv_tail):
    return ["config", "build", "--base", "crnn-mv3", "--train-labels", "labels.txt", "--val-labels",
            "val.txt", "--dict", "dict.txt", "--device", "cpu", *argv_tail]


CASES = [
    Case("export-force-cwd", ["export", "--run-dir", "run", "-o", ".", "--force"], _scratch_with_run,
         USER, ("current folder", "Fix:")),
    Case("export-force-run-dir", ["export", "--run-dir", "run", "-o", "run", "--force"], _scratch_with_run,
         USER, ("run dir", "Fix:")),
    Case("export-force-parent-of-run", ["export", "--run-dir", "{tmp}/run", "-o", "{tmp}", "--force"],
         _scratch_with_run, USER, ("Fix:",), cwd="run"),
    Case("export-force-user-folder", ["export", "--run-dir", "run", "-o", "photos", "--force"], _plain_folder,
         USER, ("other content", "Fix:")),
    Case("export-force-model-with-user-file", ["export", "--run-dir", "run", "-o", "model", "--force"],
         _model_folder_with_user_file, USER, ("my-thesis.docx", "Fix:")),
    Case("export-out-is-file", ["export", "--run-dir", "run", "-o", "notes.txt"], _scratch_with_run, USER,
         ("is a file", "Fix:")),
    Case("export-nonempty-without-force", ["export", "--run-dir", "run", "-o", "photos"], _plain_folder,
         USER, ("not empty", "--force")),
    Case("dict-over-labels", ["data", "dict", "labels.txt", "-o", "labels.txt"], ds.dataset, USER,
         ("same file as the label file", "Fix:")),
    Case("dict-over-base", ["data", "dict", "labels.txt", "--base", "dict.txt", "-o", "dict.txt"],
         ds.dataset, USER, ("base dictionary", "Fix:")),
    Case("dict-over-symlinked-labels", ["data", "dict", "labels.txt", "-o", "link.txt"], _link_to_labels,
         USER, ("same file",)),
    Case("validate-json-over-labels", ["data", "validate", "labels.txt", "--json", "labels.txt"],
         ds.dataset, USER, ("--json", "Fix:")),
    Case("validate-clean-over-labels", ["data", "validate", "labels.txt", "--write-clean", "labels.txt"],
         ds.dataset, USER, ("--write-clean", "Fix:")),
    Case("validate-clean-over-dict", ["data", "validate", "labels.txt", "--dict", "dict.txt",
                                      "--write-clean", "./dict.txt"], ds.dataset, USER, ("dictionary",)),
    Case("split-over-its-input", ["data", "split", "train.txt", "-o", "."], _train_txt, USER,
         ("train.txt", "Fix:")),
    Case("config-over-dict", _config(["-o", "dict.txt"]), _config_inputs, USER, ("dictionary", "Fix:")),
    Case("config-over-labels", _config(["-o", "val.txt"]), _config_inputs, USER, ("val label file",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_outputs(case: Case, tmp_path: Path) -> None:
    run_case(case, tmp_path)
