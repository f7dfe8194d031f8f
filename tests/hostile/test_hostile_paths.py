"""Paths the user cannot write to: exit 2 naming the path the user gave (not a temporary file)
and the fix. CI runs as root, so chmod cannot make a folder read-only; /sys refuses new files
even to root (EACCES), which is a real unwritable folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.hostile import datasets as ds
from tests.hostile.harness import Case, run_case

USER = 2
FIX = "choose a folder you can write to"

CASES = [
    Case("dict-into-sys", ["data", "dict", "labels.txt", "-o", "/sys/rectrain-dict.txt"], ds.dataset, USER,
         ("/sys/rectrain-dict.txt", FIX)),
    Case("split-into-sys", ["data", "split", "labels.txt", "-o", "/sys/rectrain-split"], ds.dataset, USER,
         ("/sys/rectrain-split", FIX)),
    Case("validate-json-into-sys", ["data", "validate", "labels.txt", "--no-images", "--json",
                                    "/sys/rectrain-report.json"], ds.dataset, USER,
         ("/sys/rectrain-report.json", FIX)),
    Case("config-build-into-sys", ["config", "build", "--base", "crnn-mv3", "--train-labels", "labels.txt",
                                   "--val-labels", "val.txt", "--dict", "dict.txt", "--device", "cpu",
                                   "--batch-size", "4", "-o", "/sys/rectrain-c.yml"],
         lambda t: (ds.dataset(t), ds.images_and_labels(t, "val.txt")), USER, ("/sys/rectrain-c", FIX)),
    Case("train-run-dir-in-sys", ["train", "--config", "train.yml", "--device", "cpu", "--run-dir",
                                  "/sys/rectrain-run"], ds.training_setup, USER, ("/sys/rectrain-run", FIX)),
]


@pytest.mark.skipif(not os.path.isdir("/sys") or os.access("/sys", os.W_OK) and not os.path.ismount("/sys"),
                    reason="needs a /sys that refuses new files")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_paths(case: Case, tmp_path: Path) -> None:
    run_case(case, tmp_path)
