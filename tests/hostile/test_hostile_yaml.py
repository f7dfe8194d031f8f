"""Issue 21, one strict YAML reader for training configs and SageMaker job configs: duplicate
keys refused naming both lines (a second `learning_rate:` must not train with lr 5.0), anchors
and aliases expanded into independent copies (an Eval dataset that is an alias of the Train one
must not make `config build` write val.txt into Train), tabs named with their line, alias bombs
and Python tags refused, and every reader of a config (config check/build, train, export,
bench loader, data pack --max-height auto, sagemaker launch/tune) going through it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import pytest
import yaml

from tests.hostile import world
from tests.hostile.harness import Case, Result, raise_failure

USER = 2
PAD = "".join(f"# my training config, tuned by hand: note {i}\n" for i in range(1, 21))  # lines 1-20
# lines 21-..: an Optimizer whose learning_rate is given twice, on lines 27 and 34
OPTIMIZER_TWICE = (PAD + "Optimizer:\n  name: Adam\n  beta1: 0.9\n  beta2: 0.999\n  lr:\n    name: Cosine\n"
                   "    learning_rate: 0.001\n" + "".join(f"    # tried {x}\n" for x in range(6))
                   + "    learning_rate: 5.0\n  regularizer:\n    name: L2\n    factor: 0.00001\n")


def both_lines(key: str, a: int, b: int):  # noqa: ANN201
    return (key, re.compile(rf"\b{a}\b[^\n]*\b{b}\b|\b{b}\b[^\n]*\b{a}\b"), "Fix:")


def _config_text(make: Callable[[dict], str], name: str = "dup.yml"):  # noqa: ANN202
    """``name``: the world's training config (over the scratch copy of its data), rewritten."""
    def setup(tmp: Path) -> None:
        world.place(tmp, "data", "cfg", "run")
        cfg = yaml.safe_load((tmp / "cfg" / "train.yml").read_text(encoding="utf-8"))
        (tmp / name).write_text(make(cfg), encoding="utf-8")
    return setup


def _optimizer_twice(cfg: dict) -> str:
    cfg.pop("Optimizer")
    return OPTIMIZER_TWICE + yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False)


def _global_twice(cfg: dict) -> str:
    text = PAD + yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False)
    return text + "# more settings\nGlobal:\n  epoch_num: 500\n"


def _tab_line(cfg: dict) -> str:
    lines = (PAD + yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False)).splitlines(keepends=True)
    at = next(i for i, ln in enumerate(lines) if ln.startswith("  epoch_num:"))
    lines[at] = "\t" + lines[at].lstrip(" ")
    return "".join(lines)


def _tab_line_number(tmp: Path) -> int:
    text = (tmp / "dup.yml").read_text(encoding="utf-8")
    return next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith("\t"))


def _says_tab_line(tmp: Path, result: Result) -> None:
    n = _tab_line_number(tmp)
    low = result.output.lower()
    assert re.search(rf"\b{n}\b", low) and ("tab" in low or "\\t" in low), \
        f"the tab on line {n} is not named\n{result.output[-2000:]}"


def _alias_bomb(cfg: dict) -> str:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        levels.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    text = yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False)
    return text + "Bomb:\n" + "".join("  " + ln + "\n" for ln in levels)


def _python_tag(cfg: dict) -> str:
    text = yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False)
    return text.replace("Global:\n", "Global:\n  seed: !!python/object/apply:os.system [\"touch pwned\"]\n",
                        1)


# -- aliases: Train and Eval must never share a node -------------------------------------------

def _aliased(share: str):  # noqa: ANN202
    """The world's config as a base where Eval's ``share`` (dataset, loader) is a YAML alias of
    Train's (PyYAML writes an anchor and an alias for a shared object), and the same base
    spelled out (b-plain.yml): `config build` must make the same config from both."""
    def setup(tmp: Path) -> None:
        world.place(tmp, "data", "cfg")
        cfg = yaml.safe_load((tmp / "cfg" / "train.yml").read_text(encoding="utf-8"))
        (tmp / "b-plain.yml").write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False),
                                         encoding="utf-8")
        cfg["Eval"][share] = cfg["Train"][share]
        text = yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False)
        assert "&id" in text and "*id" in text
        (tmp / "b.yml").write_text(text, encoding="utf-8")
        world.rectrain(*_build("b-plain.yml", "plain.yml"), cwd=tmp)
    return setup


def _build(base: str, out: str) -> list:
    return ["config", "build", "--base", base, "--train-labels", "data/train.txt", "--val-labels",
            "data/val.txt",
            "--dict", "data/dict.txt", "--device", "cpu", "--batch-size", "4", "-o", out]


def _same_as_plain(tmp: Path, result: Result) -> None:  # noqa: ARG001
    got = yaml.safe_load((tmp / "c.yml").read_text(encoding="utf-8"))
    want = yaml.safe_load((tmp / "plain.yml").read_text(encoding="utf-8"))
    train = [Path(p).name for p in got["Train"]["dataset"]["label_file_list"]]
    evals = [Path(p).name for p in got["Eval"]["dataset"]["label_file_list"]]
    assert train == ["train.txt"] and evals == ["val.txt"], f"Train {train}, Eval {evals}"
    for key in ("save_model_dir", "save_res_path"):  # named after each -o file (output/c, output/plain)
        got["Global"].pop(key, None)
        want["Global"].pop(key, None)
    for section in ("Train", "Eval", "Global"):
        assert got[section] == want[section], f"{section} differs from the build of the plain base"


def _check_ok_and_independent(tmp: Path, result: Result) -> None:  # noqa: ARG001
    _same_as_plain(tmp, result)


AFTER_BUILD = ("c.yml", "c.base.yml", "c.diff.md")


_job = world.job
JOB_HEAD = world.JOB_HEAD  # lines 1-7
JOB_TWICE = (JOB_HEAD + "instance_type: ml.g5.xlarge\n" + "# a bigger one for the final run\n" * 3
             + "instance_type: ml.p4d.24xlarge\ntraining:\n  preset: th-ppocrv5-mobile\n  dict: dict.txt\n")
JOB_TRAINING_TWICE = (JOB_HEAD + "training:\n  preset: th-ppocrv5-mobile\n  epochs: 10\n  dict: dict.txt\n"
                      "  epochs: 100\n")  # epochs on lines 10 and 12
JOB_TAB = JOB_HEAD + "training:\n  preset: th-ppocrv5-mobile\n\tdict: dict.txt\n"  # tab on line 10
JOB_BOMB = (JOB_HEAD + "training:\n  preset: th-ppocrv5-mobile\n  dict: dict.txt\nenvironment:\n"
            + "  X0: &x0 [a, a, a, a, a, a, a, a, a, a]\n"
            + "".join(f"  X{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 10) + "]\n" for i in range(1, 10)))
FAKE = world.FAKE_CREDS
LAUNCH = ["sagemaker", "launch", "--job-config", "job.yaml", "--dry-run"]
TUNE = ["sagemaker", "tune", "--job-config", "job.yaml", "--param", "lr=log:1e-4:1e-2", "--dry-run"]
TRAIN = ["train", "--device", "cpu", "--display", "plain", "--max-steps", "2", "--no-tensorboard",
         "--run-dir", "newrun"]


def R(id: str, argv, setup, says, **kw) -> Case:  # noqa: A002, ANN001 - a refusal
    return Case(id, argv, setup, kw.pop("code", USER), tuple(says), leaves_nothing=True, timeout=120,
                memory_mb=3072, **kw)


LR_TWICE = both_lines("learning_rate", 27, 34)
CASES = [
    # aliases (the case: Eval's dataset an alias of Train's), then the loader shared
    Case("build-eval-dataset-alias-of-train", _build("b.yml", "c.yml"), _aliased("dataset"), 0, (),
         may_change=AFTER_BUILD, check=_same_as_plain),
    Case("build-eval-loader-alias-of-train", _build("b.yml", "c.yml"), _aliased("loader"), 0, (),
         may_change=AFTER_BUILD, check=_same_as_plain),
    # duplicate keys, every reader of a training config
    R("check-learning-rate-twice", ["config", "check", "dup.yml"], _config_text(_optimizer_twice), LR_TWICE),
    R("check-global-twice", ["config", "check", "dup.yml"], _config_text(_global_twice), ("Global", "Fix:")),
    R("build-base-learning-rate-twice", _build("dup.yml", "c.yml"), _config_text(_optimizer_twice), LR_TWICE),
    R("train-learning-rate-twice", ["train", "--config", "dup.yml"] + TRAIN[1:],
      _config_text(_optimizer_twice),
      LR_TWICE),
    R("export-config-learning-rate-twice", ["export", "--run-dir", "run", "--config", "dup.yml", "-o", "m"],
      _config_text(_optimizer_twice), LR_TWICE),
    R("bench-loader-learning-rate-twice", ["bench", "loader", "--config", "dup.yml", "--seconds", "1",
                                           "--workers", "0"], _config_text(_optimizer_twice), LR_TWICE),
    R("pack-max-height-auto-config-twice", ["data", "pack", "data", "-o", "packed", "--max-height", "auto",
                                            "--config", "dup.yml"], _config_text(_optimizer_twice), LR_TWICE),
    # tabs
    R("check-tab-indent", ["config", "check", "dup.yml"], _config_text(_tab_line), ("dup.yml", "Fix:"),
      check=_says_tab_line),
    R("train-tab-indent", ["train", "--config", "dup.yml"] + TRAIN[1:], _config_text(_tab_line),
      ("dup.yml", "Fix:"), check=_says_tab_line),
    # aliases that explode once expanded; Python tags
    R("check-alias-bomb", ["config", "check", "dup.yml"], _config_text(_alias_bomb),
      ("dup.yml", ("alias", "anchor"), "Fix:"), within=60),
    R("check-python-tag", ["config", "check", "dup.yml"], _config_text(_python_tag), ("dup.yml", "Fix:")),
    # job configs: the same reader
    R("job-instance-type-twice", LAUNCH, _job(JOB_TWICE), both_lines("instance_type", 8, 12), env=FAKE),
    R("job-training-epochs-twice", LAUNCH, _job(JOB_TRAINING_TWICE), both_lines("epochs", 10, 12), env=FAKE),
    R("tune-job-instance-type-twice", TUNE, _job(JOB_TWICE), both_lines("instance_type", 8, 12), env=FAKE),
    R("job-tab-indent", LAUNCH, _job(JOB_TAB), ("job.yaml", re.compile(r"\b10\b"), ("tab", "\\t"), "Fix:"),
      env=FAKE),
    R("job-alias-bomb", LAUNCH, _job(JOB_BOMB), ("job.yaml", ("alias", "anchor"), "Fix:"), env=FAKE,
      within=60),
    R("job-not-utf8", LAUNCH,
      _job(JOB_HEAD.encode("utf-8") + "training:\n  preset: th\xe9\n".encode("latin-1")),
      ("job.yaml", "UTF-8", "Fix:"), env=FAKE),
    R("job-is-a-list", LAUNCH, _job("- name: thai-rec\n- region: us-east-1\n"), ("job.yaml", "Fix:"),
      env=FAKE),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_yaml(case: Case, case_results) -> None:  # noqa: ANN001
    raise_failure(case_results, case)
