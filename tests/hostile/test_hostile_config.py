"""Config typos and values the engine would swallow or only refuse with a stack trace:
`config build` (with --set) and `config check`, each naming the field and the closest name."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.hostile import datasets as ds
from tests.hostile.harness import Case, run_case

USER = 2
BUILD = ["config", "build", "--base", "crnn-mv3", "--train-labels", "labels.txt", "--val-labels", "val.txt",
         "--dict", "dict.txt", "--device", "cpu", "--batch-size", "4", "-o", "c.yml"]


def _inputs(tmp: Path) -> None:
    ds.dataset(tmp)
    ds.images_and_labels(tmp, "val.txt")
    ds.images_and_labels(tmp, "test.txt")


def _config(change):
    def setup(tmp: Path) -> None:
        cfg_path = ds.training_setup(tmp)
        cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
        change(cfg, tmp)
        (tmp / "train.yml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return setup


def _rename(old: str, new: str):
    def change(cfg, tmp):
        cfg[new] = cfg.pop(old)
    return change


def _add(path, value):
    def change(cfg, tmp):
        node = cfg
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
    return change


def _labels_utf16(cfg, tmp):
    p = tmp / "labels.txt"
    p.write_bytes(p.read_text(encoding="utf-8").encode("utf-16"))


def _yaml_dict(tmp: Path) -> None:
    _inputs(tmp)
    (tmp / "c.yml.src").write_text("x\n", encoding="utf-8")
    (tmp / "rec.yml").write_text("Global:\n  use_gpu: false\n  epoch_num: 10\n", encoding="utf-8")


def _dict_bom(tmp: Path) -> None:
    _inputs(tmp)
    p = tmp / "dict.txt"
    p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())


CHECK = ["config", "check", "train.yml"]
CASES = [
    Case("build-backbone-param-typo", BUILD + ["--set", "Architecture.Backbone.scael=0.5"], _inputs, USER,
         ("Architecture.Backbone.scael", "did you mean 'scale'")),
    Case("build-set-epochs-negative", BUILD + ["--set", "Global.epoch_num=-1"], _inputs, USER,
         ("--set Global.epoch_num=-1", "at least 1", "Fix:")),
    Case("build-set-batch-zero", ["config", "build", "--base", "crnn-mv3", "--train-labels", "labels.txt",
                                  "--val-labels", "val.txt", "--dict", "dict.txt", "--device", "cpu", "-o",
                                  "c.yml", "--set", "Train.loader.batch_size_per_card=0"], _inputs, USER,
         ("--set Train.loader.batch_size_per_card=0", "Fix:")),
    Case("build-set-lr-not-a-number", BUILD + ["--set", "Optimizer.lr.learning_rate=fast"], _inputs, USER,
         ("Optimizer.lr.learning_rate", "number")),
    Case("build-set-eval-batch-zero", BUILD + ["--set", "Eval.loader.batch_size_per_card=0"], _inputs, USER,
         ("Eval.loader.batch_size_per_card", "at least 1")),
    Case("build-global-key-typo", BUILD + ["--set", "Global.epoch_nm=3"], _inputs, USER,
         ("Global.epoch_nm", "did you mean 'epoch_num'")),
    Case("build-optimizer-key-typo", BUILD + ["--set", "Optimizer.beta_1=0.9"], _inputs, USER,
         ("Optimizer.beta_1", "did you mean 'beta1'")),
    Case("build-dict-is-a-config", ["config", "build", "--base", "crnn-mv3", "--train-labels", "labels.txt",
                                    "--val-labels", "val.txt", "--dict", "rec.yml", "--device", "cpu", "-o",
                                    "c.yml"], _yaml_dict, USER, ("rec.yml", "YAML", "dictionary")),
    Case("build-out-over-other-labels", BUILD[:-1] + ["test.txt"], _inputs, USER,
         ("test.txt", "label file", "Fix:")),
    Case("build-dict-with-bom", BUILD, _dict_bom, USER, ("dict.txt:1", "byte-order mark", "Fix:")),
    Case("check-section-typo", CHECK, _config(_rename("Train", "Trian")), USER,
         ("Trian", "Train", "Fix:")),
    Case("check-extra-section-typo", CHECK, _config(_add(("Evall",), {})), USER,
         ("Evall", "did you mean 'Eval'")),
    Case("check-loader-key-typo", CHECK, _config(_add(("Train", "loader", "shuffel"), True)), USER,
         ("Train.loader.shuffel", "did you mean 'shuffle'")),
    Case("check-lr-schedule-key-typo", CHECK, _config(_add(("Optimizer", "lr", "warmup_epochs"), 2)), USER,
         ("Optimizer.lr.warmup_epochs", "did you mean 'warmup_epoch'")),
    Case("check-transform-param-typo", CHECK,
         _config(_add(("Train", "dataset", "transforms", 2, "RecResizeImg", "image_shap"), [3, 32, 100])),
         USER, ("RecResizeImg.image_shap", "did you mean 'image_shape'")),
    Case("check-epochs-zero", CHECK, _config(_add(("Global", "epoch_num"), 0)), USER,
         ("Global.epoch_num", "at least 1")),
    Case("check-label-file-utf16", CHECK, _config(_labels_utf16), USER, ("labels.txt", "UTF-16")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_config(case: Case, tmp_path: Path) -> None:
    run_case(case, tmp_path)
