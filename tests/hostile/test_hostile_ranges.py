"""Issue 21, numeric ranges: every numeric option has a range and a value outside it is refused
(exit 2) before any work, naming the option and the fix, leaving nothing behind: `--max-steps 0`
must not train the whole schedule, `--early-stop 0`, a negative `--checkpoint-every`, `--ratio`
values that draw 0 samples per epoch, `data pack --max-height` below the model's input height,
NaN where a number is expected, and the other numeric options of every command."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pytest

from tests.hostile import datasets as ds
from tests.hostile import world
from tests.hostile.harness import Case, raise_failure

USER = 2


_world = world.setup("data", "cfg")
_job = world.job()
FAKE_AWS = world.CLOSED_PORT


def _small(tmp: Path) -> None:
    ds.dataset(tmp)
    ds.images_and_labels(tmp, "val.txt")
    (tmp / "words.txt").write_text("สวัสดี\nไทย\n", encoding="utf-8")


def _packed(tmp: Path) -> None:
    _small(tmp)
    world.rectrain("data", "pack", "img", "-o", "packed", cwd=tmp)


def _run_and_model(tmp: Path) -> None:
    world.place(tmp, "data", "run", "model")


def N(id: str, argv: Sequence[str], setup, option: str, *, timeout: float = 120,
      env=None) -> Case:  # noqa: A002, ANN001
    """A value out of range: exit 2 naming ``option`` (as the flag or the setting it fills:
    --max-text-length, max_text_length) and the fix, nothing written."""
    bare = option.lstrip("-")
    names = (option, bare.replace("-", "_"), bare.replace("-", " "))
    return Case(f"{id}", list(argv), setup, USER, (names, "Fix:"), env=dict(env or {}), timeout=timeout,
                leaves_nothing=True)


TRAIN = ["train", "--config", "cfg/train.yml", "--run-dir", "newrun", "--device", "cpu", "--display", "plain",
         "--no-tensorboard"]
BUILD = ["config", "build", "--base", "crnn-mv3", "--train-labels", "labels.txt", "--val-labels", "val.txt",
         "--dict", "dict.txt", "--device", "cpu", "--batch-size", "4", "-o", "c.yml"]
TWO_FILES = ["config", "build", "--base", "crnn-mv3", "--train-labels", "labels.txt", "val.txt",
             "--val-labels",
             "val.txt", "--dict", "dict.txt", "--device", "cpu", "--batch-size", "4", "-o", "c.yml"]
EVAL = ["evaluate", "--model", "model", "--labels", "data/val.txt", "--device", "cpu"]
LAUNCH = ["sagemaker", "launch", "--job-config", "job.yaml", "--dry-run"]
TUNE = ["sagemaker", "tune", "--job-config", "job.yaml", "--param", "lr=log:1e-4:1e-2", "--dry-run"]

WORLD_CASES = [
    # train: none of these may start the engine
    N("train-max-steps-0", TRAIN + ["--max-steps", "0"], _world, "--max-steps"),
    N("train-max-steps-negative", TRAIN + ["--max-steps", "-5"], _world, "--max-steps"),
    N("train-early-stop-0", TRAIN + ["--max-steps", "2", "--early-stop", "0"], _world, "--early-stop"),
    N("train-early-stop-negative", TRAIN + ["--max-steps", "2", "--early-stop", "-1"], _world,
      "--early-stop"),
    N("train-checkpoint-every-negative", TRAIN + ["--max-steps", "2", "--checkpoint-every", "-5"], _world,
      "--checkpoint-every"),
    N("train-checkpoint-every-0", TRAIN + ["--max-steps", "2", "--checkpoint-every", "0"], _world,
      "--checkpoint-every"),
    N("train-checkpoint-every-nan", TRAIN + ["--max-steps", "2", "--checkpoint-every", "nan"], _world,
      "--checkpoint-every"),
    N("train-sub-epochs-0", TRAIN + ["--max-steps", "2", "--sub-epochs", "0"], _world, "--sub-epochs"),
    N("train-sub-epochs-negative", TRAIN + ["--max-steps", "2", "--sub-epochs", "-2"], _world,
      "--sub-epochs"),
    N("train-max-seconds-0", TRAIN + ["--max-steps", "2", "--max-seconds", "0"], _world, "--max-seconds"),
    N("train-max-seconds-negative", TRAIN + ["--max-steps", "2", "--max-seconds", "-10"], _world,
      "--max-seconds"),
    N("train-workers-negative", TRAIN + ["--max-steps", "2", "--workers", "-1"], _world, "--workers"),
    # pack --max-height below the model's input height (32 px here)
    N("pack-max-height-below-input", ["data", "pack", "data", "-o", "packed", "--max-height", "16",
                                      "--config",
                                      "cfg/train.yml"], _world, "--max-height"),
    N("bench-seconds-0", ["bench", "loader", "--config", "cfg/train.yml", "--seconds", "0"], _world,
      "--seconds"),
    N("bench-seconds-negative", ["bench", "loader", "--config", "cfg/train.yml", "--seconds", "-1"], _world,
      "--seconds"),
    N("bench-workers-negative", ["bench", "loader", "--config", "cfg/train.yml", "--workers", "-2",
                                 "--seconds",
                                 "1"], _world, "--workers"),
    # evaluate / predict
    N("evaluate-batch-size-0", EVAL + ["--batch-size", "0"], _run_and_model, "--batch-size"),
    N("evaluate-worst-negative", EVAL + ["--worst", "-1", "--grid", "g.png"], _run_and_model, "--worst"),
    N("evaluate-top-negative", EVAL + ["--top", "-1"], _run_and_model, "--top"),
    N("predict-batch-size-0", ["predict", "--model", "model", "data/images/img_000.png", "--device", "cpu",
                               "--batch-size", "0"], _run_and_model, "--batch-size"),
    N("monitor-interval-negative", ["monitor", "run", "--follow", "--interval", "-1"], _run_and_model,
      "--interval"),
    N("monitor-interval-nan", ["monitor", "run", "--follow", "--interval", "nan"], _run_and_model,
      "--interval"),
]

SMALL_CASES = [
    # config build
    N("build-ratio-draws-zero-samples", TWO_FILES + ["--ratio", "1,0.01"], _small, "--ratio"),
    N("build-ratio-nan", TWO_FILES + ["--ratio", "1,nan"], _small, "--ratio"),
    N("build-epochs-0", BUILD + ["--epochs", "0"], _small, "--epochs"),
    N("build-epochs-negative", BUILD + ["--epochs", "-3"], _small, "--epochs"),
    N("build-lr-0", BUILD + ["--lr", "0"], _small, "--lr"),
    N("build-lr-negative", BUILD + ["--lr", "-0.001"], _small, "--lr"),
    N("build-lr-nan", BUILD + ["--lr", "nan"], _small, "--lr"),
    N("build-batch-size-0", BUILD[:-4] + ["--batch-size", "0", "-o", "c.yml"], _small, "--batch-size"),
    N("build-batch-size-negative", BUILD[:-4] + ["--batch-size", "-4", "-o", "c.yml"], _small,
      "--batch-size"),
    N("build-max-text-length-0", BUILD + ["--max-text-length", "0"], _small, "--max-text-length"),
    N("build-max-text-length-negative", BUILD + ["--max-text-length", "-1"], _small, "--max-text-length"),
    N("build-image-shape-zero-height", BUILD + ["--image-shape", "3,0,100"], _small, "--image-shape"),
    N("build-image-shape-negative-height", BUILD + ["--image-shape", "3,-32,100"], _small, "--image-shape"),
    # data
    N("split-val-0", ["data", "split", "labels.txt", "-o", "out", "--val", "0"], _small, "--val"),
    N("split-val-nan", ["data", "split", "labels.txt", "-o", "out", "--val", "nan"], _small, "--val"),
    N("synth-height-0", ["data", "synth", "--words", "words.txt", "-n", "2", "-o", "out", "--height", "0"],
      _small,
      "--height"),
    N("synth-height-negative", ["data", "synth", "--words", "words.txt", "-n", "2", "-o", "out", "--height",
                                "-32"],
      _small, "--height"),
    N("synth-lines-above-1", ["data", "synth", "--words", "words.txt", "-n", "2", "-o", "out", "--lines",
                              "1.5"],
      _small, "--lines"),
    N("synth-lines-negative", ["data", "synth", "--words", "words.txt", "-n", "2", "-o", "out", "--lines",
                               "-0.5"],
      _small, "--lines"),
    N("synth-workers-0", ["data", "synth", "--words", "words.txt", "-n", "2", "-o", "out", "--workers", "0"],
      _small, "--workers"),
    N("synth-max-len-0", ["data", "synth", "--words", "thai", "-n", "2", "-o", "out", "--max-len", "0"],
      _small,
      "--max-len"),
    N("report-samples-negative", ["data", "report", "labels.txt", "-o", "rep", "--samples", "-1"], _small,
      "--samples"),
    N("validate-workers-0", ["data", "validate", "labels.txt", "--workers", "0"], _small, "--workers"),
    N("validate-max-text-length-0", ["data", "validate", "labels.txt", "--max-text-length", "0"], _small,
      "--max-text-length"),
    N("validate-examples-negative", ["data", "validate", "labels.txt", "--examples", "-1"], _small,
      "--examples"),
    N("pack-max-height-0", ["data", "pack", ".", "-o", "../packed", "--max-height", "0"], _small,
      "--max-height"),
    N("pack-shard-size-0", ["data", "pack", "img", "-o", "packed", "--shard-size", "0"], _small,
      "--shard-size"),
    N("pack-shard-size-negative", ["data", "pack", "img", "-o", "packed", "--shard-size=-1MB"], _small,
      "--shard-size"),
    N("unpack-workers-0", ["data", "unpack", "packed", "-o", "out", "--workers", "0"], _packed, "--workers"),
    N("s3-push-workers-0", ["s3", "push", "img", "s3://bucket/img", "--workers", "0"], _small, "--workers",
      env=FAKE_AWS),
    N("s3-pull-workers-negative", ["s3", "pull", "s3://bucket/img", "out", "--workers", "-4"], _small,
      "--workers",
      env=FAKE_AWS),
    # sagemaker (dry runs and checks before any request)
    N("sm-instance-count-0", LAUNCH + ["--instance-count", "0"], _job, "--instance-count", env=FAKE_AWS),
    N("sm-volume-gb-0", LAUNCH + ["--volume-gb", "0"], _job, "--volume-gb", env=FAKE_AWS),
    N("sm-epochs-0", LAUNCH + ["--epochs", "0"], _job, "--epochs", env=FAKE_AWS),
    N("sm-lr-negative", LAUNCH + ["--lr", "-1"], _job, "--lr", env=FAKE_AWS),
    N("sm-batch-size-0", LAUNCH + ["--batch-size", "0"], _job, "--batch-size", env=FAKE_AWS),
    N("tune-max-jobs-0", TUNE + ["--max-jobs", "0"], _job, "--max-jobs", env=FAKE_AWS),
    N("tune-max-parallel-0", TUNE + ["--max-parallel", "0"], _job, "--max-parallel", env=FAKE_AWS),
    N("sm-logs-poll-0", ["sagemaker", "logs", "thai-rec-2026", "--follow", "--poll", "0"], _job, "--poll",
      env=FAKE_AWS, timeout=60),
    N("run-local-interrupt-after-negative", ["sagemaker", "run-local", "--job-config", "job.yaml",
                                             "--interrupt-after", "-5", "--work-dir", "work"], _job,
      "--interrupt-after", env=FAKE_AWS, timeout=60),
    N("run-local-max-steps-0", ["sagemaker", "run-local", "--job-config", "job.yaml", "--max-steps", "0",
                                "--work-dir", "work"], _job, "--max-steps", env=FAKE_AWS, timeout=60),
    # demo / s3 serve
    N("demo-steps-0", ["demo", "--steps", "0", "--workdir", "d"], lambda t: None, "--steps", timeout=60),
    N("demo-minutes-negative", ["demo", "--minutes", "-1", "--workdir", "d"], lambda t: None, "--minutes",
      timeout=60),
    N("s3-serve-port-out-of-range", ["s3", "serve", "--port", "70000", "--data-dir", "s3data"],
      lambda t: None,
      "--port", timeout=30),
]


CASES = WORLD_CASES + SMALL_CASES


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_range(case: Case, case_results) -> None:  # noqa: ANN001
    raise_failure(case_results, case)
