"""Issue 21, bounded waits: an S3 endpoint that accepts connections and never answers, and
special files (named pipes, devices) where a file is expected. Every command must end: the
endpoint within about a minute (asserted generously, < 120 s, so a loaded machine passes),
naming the endpoint and the fix; a special file at once, refused by its type.

The cases of each group start together (each in its own scratch folder) and are checked one by
one: the suite pays for one timeout per group, not one per case."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from tests.hostile import world
from tests.hostile.harness import Case, run_batch

USER = 2
BOUND = 120.0  # the issue asks for "within a minute"; generous for a loaded CI machine
PIPE_WORDS = ("named pipe", "fifo", "pipe", "not a regular file", "special file")
DEVICE_WORDS = ("device", "not a regular file", "special file")


_world = world.setup
_both = world.steps
_job = world.job()
CREDS = world.FAKE_CREDS


def blackhole_cases(url: str) -> List[Case]:
    port = url.rsplit(":", 1)[1]
    says = ((f"127.0.0.1:{port}",), "Fix:")
    ep = ["--endpoint-url", url]
    env = dict(CREDS)
    env_ep = dict(CREDS, AWS_ENDPOINT_URL=url)

    def C(id: str, argv, setup=lambda t: None, code=USER, **kw) -> Case:  # noqa: A002, ANN001
        return Case(f"silent-endpoint:{id}", argv, setup, code, says, env=kw.pop("env", env),
                    timeout=BOUND + 40, within=BOUND, leaves_nothing=kw.pop("leaves_nothing", True), **kw)

    return [
        C("ckpt-list", ["ckpt", "list", "s3://bucket/runs/a"] + ep),
        C("ckpt-pull", ["ckpt", "pull", "s3://bucket/runs/a", "dest"] + ep),
        C("ckpt-push", ["ckpt", "push", "run", "s3://bucket/runs/a"] + ep, _world("run")),
        C("ckpt-prune", ["ckpt", "prune", "s3://bucket/runs/a", "--keep-last", "1"] + ep),
        C("s3-ls-from-env", ["s3", "ls", "s3://bucket/data"], env=env_ep),
        C("s3-push", ["s3", "push", "data", "s3://bucket/data"] + ep, _world("data")),
        C("s3-pull", ["s3", "pull", "s3://bucket/data", "dest"] + ep),
        C("s3-pull-unpack", ["s3", "pull", "s3://bucket/packed", "dest", "--unpack"] + ep),
        C("s3-check", ["s3", "check", "s3://bucket/x"] + ep, code=(1, USER)),
        C("monitor-s3", ["monitor", "s3://bucket/runs/a"] + ep),
        C("runs-compare-s3", ["runs", "compare", "s3://bucket/runs/a", "s3://bucket/runs/b"] + ep),
        C("train-checkpoint-s3", ["train", "--config", "cfg/train.yml", "--run-dir", "newrun", "--device",
                                  "cpu",
                                  "--display", "plain", "--max-steps", "2", "--no-tensorboard",
                                  "--checkpoint-s3", "s3://bucket/runs/a"] + ep, _world("data", "cfg")),
        C("doctor", ["doctor", "--device", "cpu"] + ep, code=1),
        C("sagemaker-launch-preflight", ["sagemaker", "launch", "--job-config", "job.yaml"] + ep, _job),
        C("sagemaker-run-local", ["sagemaker", "run-local", "--job-config", "job.yaml", "--work-dir", "work",
                                  "--max-steps", "2"] + ep, _job, leaves_nothing=False),
    ]


# -- special files ----------------------------------------------------------------------------

def _fifo(rel: str):  # noqa: ANN202
    def go(tmp: Path) -> None:
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(tmp / rel)
    return go


def _labels_with(image: str):  # noqa: ANN202
    """labels.txt over real images, plus one line naming ``image``."""
    def go(tmp: Path) -> None:
        from tests.hostile import datasets as ds

        ds.images_and_labels(tmp)
        ds.dictionary(tmp)
        with open(tmp / "labels.txt", "a", encoding="utf-8") as fh:
            fh.write(f"{image}\tok\n")
    return go


def _small(tmp: Path) -> None:
    from tests.hostile import datasets as ds

    ds.dataset(tmp)
    ds.images_and_labels(tmp, "val.txt")


def _dataset_folder(tmp: Path) -> None:
    (tmp / "ds").mkdir()
    _small(tmp / "ds")


def _image_is_fifo(tmp: Path) -> None:
    """One image of the world's training set replaced by a named pipe."""
    img = tmp / "data" / "images" / "img_003.png"
    img.unlink()
    os.mkfifo(img)


def _pipe(id: str, argv, setup, code=USER, says=(), words=PIPE_WORDS, **kw) -> Case:  # noqa: A002, ANN001
    return Case(f"special-file:{id}", argv, setup, code, tuple(says) + (words,), timeout=90, within=60,
                leaves_nothing=kw.pop("leaves_nothing", True), memory_mb=kw.pop("memory_mb", 3072), **kw)


BUILD = ["config", "build", "--base", "crnn-mv3", "--train-labels", "labels.txt", "--val-labels", "val.txt",
         "--dict", "dict.txt", "--device", "cpu", "--batch-size", "4", "-o", "c.yml"]
SPECIAL: List[Case] = [
    _pipe("validate-image-is-a-fifo", ["data", "validate", "labels.txt", "--workers", "1"],
          _both(_labels_with("img/pipe.png"), _fifo("img/pipe.png")), code=(1, USER), says=("pipe.png",)),
    _pipe("validate-labels-is-a-fifo", ["data", "validate", "pipe.txt"], _both(_small, _fifo("pipe.txt")),
          says=("pipe.txt",)),
    _pipe("validate-dict-is-a-fifo", ["data", "validate", "labels.txt", "--no-images", "--dict", "pipe.txt"],
          _both(_small, _fifo("pipe.txt")), says=("pipe.txt",)),
    _pipe("report-image-is-a-fifo", ["data", "report", "labels.txt", "-o", "rep", "--samples", "4"],
          _both(_labels_with("img/pipe.png"), _fifo("img/pipe.png")), code=(0, 1, USER), says=("pipe.png",),
          leaves_nothing=False),
    _pipe("dict-labels-is-a-fifo", ["data", "dict", "pipe.txt", "-o", "d.txt"], _both(_small,
                                                                                      _fifo("pipe.txt")),
          says=("pipe.txt",)),
    _pipe("dict-base-is-a-fifo", ["data", "dict", "labels.txt", "--base", "pipe.txt", "-o", "d.txt"],
          _both(_small, _fifo("pipe.txt")), says=("pipe.txt",)),
    _pipe("split-labels-is-a-fifo", ["data", "split", "pipe.txt", "-o", "out"], _both(_small,
                                                                                      _fifo("pipe.txt")),
          says=("pipe.txt",)),
    _pipe("synth-words-is-a-fifo", ["data", "synth", "--words", "pipe.txt", "-n", "2", "-o", "out"],
          _fifo("pipe.txt"), says=("pipe.txt",)),
    _pipe("pack-dataset-holds-a-fifo", ["data", "pack", "ds", "-o", "out"],
          _both(_dataset_folder, _fifo("ds/img/pipe.png")),
          says=("pipe.png",)),
    _pipe("config-check-is-a-fifo", ["config", "check", "pipe.yml"], _fifo("pipe.yml"), says=("pipe.yml",)),
    _pipe("config-build-base-is-a-fifo", BUILD[:3] + ["pipe.yml"] + BUILD[4:], _both(_small,
                                                                                     _fifo("pipe.yml")),
          says=("pipe.yml",)),
    _pipe("config-build-dict-is-a-fifo", BUILD[:9] + ["pipe.txt"] + BUILD[10:], _both(_small,
                                                                                      _fifo("pipe.txt")),
          says=("pipe.txt",)),
    _pipe("train-config-is-a-fifo", ["train", "--config", "pipe.yml", "--run-dir", "run", "--device", "cpu"],
          _fifo("pipe.yml"), says=("pipe.yml",)),
    _pipe("sagemaker-job-config-is-a-fifo", ["sagemaker", "launch", "--job-config", "pipe.yaml", "--dry-run"],
          _fifo("pipe.yaml"), says=("pipe.yaml",), env=CREDS),
    _pipe("extend-dict-dict-is-a-fifo", ["ckpt", "extend-dict", "--pretrained",
                                         "run/checkpoints/latest.pdparams",
                                         "--base-dict", "data/dict.txt", "--dict", "pipe.txt", "-o",
                                         "g.pdparams"],
          _world("data", "run", then=_fifo("pipe.txt")), says=("pipe.txt",)),
    _pipe("evaluate-labels-is-a-fifo", ["evaluate", "--model", "model", "--labels", "pipe.txt", "--device",
                                        "cpu"],
          _world("model", then=_fifo("pipe.txt")), says=("pipe.txt",)),
    _pipe("predict-image-is-a-fifo", ["predict", "--model", "model", "pipe.png", "--device", "cpu"],
          _world("model", then=_fifo("pipe.png")), code=(1, USER), says=("pipe.png",)),
    _pipe("s3-push-folder-holds-a-fifo", ["s3", "push", "ds", "s3://bucket/ds", "--endpoint-url",
                                          "http://127.0.0.1:9"],
          _both(lambda t: (t / "ds").mkdir(), _fifo("ds/pipe.png")), says=("pipe.png",), env=CREDS),
    _pipe("train-image-is-a-fifo", ["train", "--config", "cfg/train.yml", "--run-dir", "newrun", "--device",
                                    "cpu", "--display", "plain", "--max-steps", "2", "--no-tensorboard"],
          _world("data", "cfg", then=_image_is_fifo), says=("img_003.png",)),
    # devices: endless (/dev/zero, /dev/urandom) or nothing at all
    _pipe("validate-labels-is-dev-zero", ["data", "validate", "/dev/zero"], _small, says=("/dev/zero",),
          words=DEVICE_WORDS),
    _pipe("validate-image-is-dev-zero", ["data", "validate", "labels.txt", "--workers", "1"],
          _labels_with("/dev/zero"), code=(1, USER), says=("/dev/zero",), words=DEVICE_WORDS),
    _pipe("dict-base-is-dev-urandom", ["data", "dict", "labels.txt", "--base", "/dev/urandom", "-o", "d.txt"],
          _small, says=("/dev/urandom",), words=DEVICE_WORDS),
    _pipe("config-check-is-dev-zero", ["config", "check", "/dev/zero"], lambda t: None, says=("/dev/zero",),
          words=DEVICE_WORDS),
    _pipe("synth-words-is-dev-urandom", ["data", "synth", "--words", "/dev/urandom", "-n", "2", "-o", "out"],
          lambda t: None, says=("/dev/urandom",), words=DEVICE_WORDS),
]


@pytest.fixture(scope="module")
def results(blackhole, hostile_world, tmp_path_factory) -> Dict[str, Optional[BaseException]]:  # noqa: ANN001
    """Both groups at once: the silent endpoint's minute and the special files' refusals overlap."""
    cases = blackhole_cases(blackhole.url) + SPECIAL
    return run_batch(cases, tmp_path_factory.mktemp("waits"), workers=len(cases))


BLACKHOLE_IDS = [c.id for c in blackhole_cases("http://127.0.0.1:1")]


@pytest.mark.parametrize("case_id", BLACKHOLE_IDS)
def test_silent_endpoint(case_id: str, results) -> None:  # noqa: ANN001
    err = results[case_id]
    if err is not None:
        raise err


@pytest.mark.parametrize("case_id", [c.id for c in SPECIAL])
def test_special_file(case_id: str, results) -> None:  # noqa: ANN001
    err = results[case_id]
    if err is not None:
        raise err
