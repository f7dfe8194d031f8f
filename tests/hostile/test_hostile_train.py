"""`rectrain train` on hostile input: the config's files are checked before the engine starts
(exit 2 like `config check`, not 4), the run folder is never a folder of the user's, and a
resume refuses a changed config or says what it does past --max-steps."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.hostile import datasets as ds
from tests.hostile.harness import Case, run_case

USER = 2
TRAIN = ["train", "--config", "train.yml", "--device", "cpu", "--display", "plain"]


def _setup(change=None):
    def setup(tmp: Path) -> None:
        ds.training_setup(tmp)
        (tmp / "notes.txt").write_text("my notes\n", encoding="utf-8")
        if change:
            change(tmp)
    return setup


def _labels_gone(tmp: Path) -> None:
    (tmp / "labels.txt").unlink()


def _labels_utf16(tmp: Path) -> None:
    p = tmp / "labels.txt"
    p.write_bytes(p.read_text(encoding="utf-8").encode("utf-16"))


def _labels_bom(tmp: Path) -> None:
    p = tmp / "labels.txt"
    p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())


def _dict_is_yaml(tmp: Path) -> None:
    (tmp / "dict.txt").write_text("Global:\n  use_gpu: false\n", encoding="utf-8")


def _user_config_in_run(tmp: Path) -> None:
    (tmp / "run").mkdir()
    (tmp / "run" / "config.yml").write_text("my: own config\n", encoding="utf-8")


def _user_checkpoints_here(tmp: Path) -> None:
    (tmp / "checkpoints").mkdir()
    (tmp / "checkpoints" / "model_v1.pdparams").write_bytes(b"my weights")


def _resume_changed(key_path, value):
    def setup(tmp: Path) -> None:
        ds.interrupted_run(tmp)
        cfg = yaml.safe_load((tmp / "train.yml").read_text(encoding="utf-8"))
        node = cfg
        for k in key_path[:-1]:
            node = node[k]
        node[key_path[-1]] = value
        (tmp / "train.yml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return setup


def _resume_changed_dict(tmp: Path) -> None:
    ds.interrupted_run(tmp)
    with open(tmp / "dict.txt", "a", encoding="utf-8") as fh:
        fh.write("z\n")


def _weights(tmp: Path) -> None:
    (tmp / "best.pdparams").write_bytes(bytes(range(256)) * 8)


def _dict_bom(tmp: Path) -> None:
    p = tmp / "dict.txt"
    p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())


CASES = [
    Case("train-config-is-weights", ["train", "--config", "best.pdparams", "--run-dir", "run", "--device",
                                     "cpu"],
         _setup(_weights), USER, ("best.pdparams", "not UTF-8", "Fix:")),
    Case("train-config-is-a-label-file", ["train", "--config", "labels.txt", "--run-dir", "run", "--device",
                                          "cpu"], _setup(), USER, ("labels.txt", "label file", "Fix:")),
    Case("train-dict-with-bom", TRAIN + ["--run-dir", "run"], _setup(_dict_bom), USER,
         ("dict.txt:1", "byte-order mark", "first entry")),
    Case("train-run-dir-is-a-file", TRAIN + ["--run-dir", "notes.txt"], _setup(), USER,
         ("notes.txt is a file", "Fix:")),
    Case("train-label-file-gone", TRAIN + ["--run-dir", "run"], _setup(_labels_gone), USER,
         ("Train.dataset.label_file_list", "labels.txt does not exist", "Fix:")),
    Case("train-label-file-utf16", TRAIN + ["--run-dir", "run"], _setup(_labels_utf16), USER,
         ("labels.txt", "UTF-16", "iconv")),
    Case("train-label-file-bom", TRAIN + ["--run-dir", "run"], _setup(_labels_bom), USER,
         ("byte-order mark", "labels.txt:1")),
    Case("train-dict-is-yaml", TRAIN + ["--run-dir", "run"], _setup(_dict_is_yaml), USER,
         ("dict.txt", "YAML", "dictionary")),
    Case("train-run-dir-holds-user-config", TRAIN + ["--run-dir", "run"], _setup(_user_config_in_run),
         USER, ("config.yml", "rectrain did not write", "Fix:")),
    Case("train-run-dir-is-cwd-with-checkpoints", TRAIN + ["--run-dir", "."],
         _setup(_user_checkpoints_here), USER, ("checkpoints/", "Fix:")),
    Case("train-resume-changed-batch", TRAIN + ["--run-dir", "run", "--resume"],
         _resume_changed(("Train", "loader", "batch_size_per_card"), 8), USER,
         ("batch size: 4 -> 8", "--allow-config-change", "Fix:")),
    Case("train-resume-changed-lr", TRAIN + ["--run-dir", "run", "--resume"],
         _resume_changed(("Optimizer", "lr", "learning_rate"), 0.01), USER,
         ("learning rate", "0.001 -> 0.01")),
    Case("train-resume-changed-backbone", TRAIN + ["--run-dir", "run", "--resume"],
         _resume_changed(("Architecture", "Backbone", "scale"), 0.5), USER, ("architecture", "Backbone")),
    Case("train-resume-changed-dictionary", TRAIN + ["--run-dir", "run", "--resume"], _resume_changed_dict,
         USER, ("dictionary content",)),
    Case("train-resume-past-max-steps", TRAIN + ["--run-dir", "run", "--resume", "--max-steps", "6"],
         ds.interrupted_run, 0, ("already at step 8", "nothing is trained"), may_change=("run/",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_train(case: Case, tmp_path: Path) -> None:
    run_case(case, tmp_path)
