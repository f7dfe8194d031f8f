"""Hostile cases for the other command families: data (convert, synth, report, pack, unpack,
validate), model (evaluate, monitor), ckpt, s3 (without a server: refused before any request)
and sagemaker (durations, run-local work dir). Each: exit code, the message names the file or
field and the fix, and no input changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.hostile import datasets as ds
from tests.hostile.harness import Case, run_case

USER = 2
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}


def _ppocrlabel(tmp: Path) -> None:
    ds.dataset(tmp)
    boxes = [{"transcription": "ok", "points": [[0, 0], [40, 0], [40, 20], [0, 20]], "difficult": False}]
    (tmp / "Label.txt").write_text(f"img/0.png\t{json.dumps(boxes)}\n", encoding="utf-8")


def _words(tmp: Path) -> None:
    ds.dataset(tmp)
    (tmp / "words.txt").write_text("สวัสดี\nไทย\n", encoding="utf-8")


def _report_folder_with_user_labels(tmp: Path) -> None:
    """A folder where `data report` wrote its charts, holding the user's own labels.txt."""
    from rectrain.data.charts import dataset_report

    _words(tmp)
    dataset_report(tmp / "labels.txt", tmp / "charts", samples=2)
    (tmp / "charts" / "labels.txt").write_text("img/0.png\tmine\n", encoding="utf-8")


def _user_samples_png(tmp: Path) -> None:
    ds.dataset(tmp)
    (tmp / "charts").mkdir()
    (tmp / "charts" / "samples.png").write_bytes(b"\x89PNG\r\n\x1a\n my own figure")


def _packed(tmp: Path) -> None:
    from rectrain.storage.pack import pack_dataset

    ds.images_and_labels(tmp / "ds")
    pack_dataset(tmp / "ds", tmp / "packed", progress=False)


def _huge_image(tmp: Path) -> None:
    ds.dataset(tmp)
    ds.big_png(tmp / "img" / "scan.png", 20000, 20000)
    with open(tmp / "labels.txt", "a", encoding="utf-8") as fh:
        fh.write("img/scan.png\tok\n")


def _nfd(tmp: Path) -> None:
    import unicodedata

    from PIL import Image

    words = ["café", "naïve", "résumé"]
    (tmp / "img").mkdir()
    lines = []
    for i, w in enumerate(words):
        Image.new("RGB", (80, 32), "white").save(tmp / "img" / f"{i}.png")
        lines.append(f"img/{i}.png\t{unicodedata.normalize('NFD', w)}\n")
    (tmp / "labels.txt").write_text("".join(lines), encoding="utf-8")
    chars = sorted(set("".join(unicodedata.normalize("NFD", w) for w in words)))
    (tmp / "dict.txt").write_text("".join(c + "\n" for c in chars), encoding="utf-8")


def _run_folder(tmp: Path) -> None:
    ds.dataset(tmp)
    ds.fake_run(tmp)
    (tmp / "run" / "metrics.jsonl").write_text('{"type": "train", "global_step": 1, "loss": 1.0}\n',
                                               encoding="utf-8")


def _job(tmp: Path) -> None:
    (tmp / "job.yaml").write_text(
        "name: thai-rec\nrole: arn:aws:iam::123456789012:role/R\n"
        "image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/rectrain:1\nregion: us-east-1\n"
        "train: s3://b/train\nval: s3://b/val\noutput: s3://b/jobs\n"
        "training:\n  preset: th-ppocrv5-mobile\n  dict: dict.txt\n", encoding="utf-8")


def _job_and_checkpoints(tmp: Path) -> None:
    _job(tmp)
    (tmp / "checkpoints").mkdir()
    (tmp / "checkpoints" / "my-model.pdparams").write_bytes(b"weights of last month")


SM = ["sagemaker", "launch", "--job-config", "job.yaml", "--dry-run"]
CASES = [
    # data
    Case("convert-over-existing-labels", ["data", "convert", "Label.txt", "--from", "ppocrlabel", "-o", "."],
         _ppocrlabel, USER, ("labels.txt", "rectrain did not write", "Fix:")),
    Case("synth-into-dataset-folder", ["data", "synth", "--words", "words.txt", "-n", "2", "-o", "."], _words,
         USER, ("labels.txt", "Fix:")),
    Case("synth-into-a-report-folder", ["data", "synth", "--words", "words.txt", "-n", "2", "-o", "charts"],
         _report_folder_with_user_labels, USER, ("labels.txt", "rectrain did not write")),
    Case("report-over-user-figure", ["data", "report", "labels.txt", "-o", "charts"], _user_samples_png, USER,
         ("samples.png", "Fix:")),
    Case("pack-out-inside-dataset", ["data", "pack", "ds", "-o", "ds/packed"], _packed, USER,
         ("inside the dataset folder", "Fix:")),
    Case("unpack-into-its-shards", ["data", "unpack", "packed", "-o", "packed", "--delete"], _packed, USER,
         ("packed dataset", "--delete", "Fix:")),
    Case("unpack-delete-into-cwd", ["data", "unpack", "packed", "-o", ".", "--delete"], _packed, USER,
         ("packed dataset", "Fix:")),
    Case("dict-over-another-label-file", ["data", "dict", "labels.txt", "-o", "val.txt"],
         lambda t: (ds.dataset(t), ds.images_and_labels(t, "val.txt")), USER, ("val.txt", "label file")),
    Case("validate-decompression-bomb", ["data", "validate", "labels.txt", "--workers", "1"], _huge_image, 1,
         ("huge-image", "img/scan.png", "20000x20000", "fix:")),
    Case("validate-nfd-labels-nfd-dict", ["data", "validate", "labels.txt", "--dict", "dict.txt",
                                          "--workers", "1"], _nfd, 0, ("NFD", "same decomposed form")),
    Case("validate-json-over-config", ["data", "validate", "labels.txt", "--json", "notes.yml"],
         lambda t: (ds.dataset(t), (t / "notes.yml").write_text("a: 1\n", encoding="utf-8")), USER,
         ("notes.yml", "not a JSON", "Fix:")),
    # model
    Case("evaluate-json-over-labels", ["evaluate", "--model", "run", "--labels", "labels.txt", "--json",
                                       "labels.txt"], _run_folder, USER, ("--json", "label file", "Fix:")),
    Case("evaluate-grid-over-an-image", ["evaluate", "--model", "run", "--labels", "labels.txt", "--grid",
                                         "img/1.png"], _run_folder, USER, ("--grid", "img/1.png", "Fix:")),
    Case("evaluate-json-over-model-file", ["evaluate", "--model", "run", "--labels", "labels.txt", "--json",
                                           "run/config.yml"], _run_folder, USER, ("model file", "Fix:")),
    Case("monitor-plot-over-metrics", ["monitor", "run", "--plot", "run/metrics.jsonl"], _run_folder, USER,
         ("metrics.jsonl", "not a PNG", "Fix:")),
    Case("monitor-plot-over-train-log", ["monitor", "run", "--plot", "run/train.log"], _run_folder, USER,
         ("train.log", "Fix:")),
    # ckpt
    Case("ckpt-prune-negative-keep", ["ckpt", "prune", "run", "--keep-last", "-1"], _run_folder, USER,
         ("--keep-last", "Fix:")),
    # s3 (refused before any request: the endpoint is a closed port)
    Case("s3-pull-delete-into-cwd", ["s3", "pull", "s3://bucket/data", ".", "--delete"], ds.dataset, USER,
         ("--delete", "current folder", "Fix:"), env=FAKE_AWS),
    Case("s3-pull-delete-into-parent", ["s3", "pull", "s3://bucket/data", "..", "--delete"],
         lambda t: (ds.dataset(t), (t / "sub").mkdir()), USER, ("parent of the current folder",),
         cwd="sub", env=FAKE_AWS),
    # sagemaker
    Case("sm-max-run-past-28-days", SM + ["--max-run", "60d"], _job, USER, ("28 days", "Fix:"), env=FAKE_AWS),
    Case("sm-max-run-unreadable", SM + ["--max-run", "12x"], _job, USER, ("12x", "Fix:"), env=FAKE_AWS),
    Case("sm-max-run-zero", SM + ["--max-run", "0"], _job, USER, ("more than zero",), env=FAKE_AWS),
    Case("sm-max-run-30-seconds", SM + ["--max-run", "30"], _job, 0, ("30 s", "30m"), env=FAKE_AWS),
    Case("sm-spot-max-wait-31-days", SM + ["--spot", "--max-run", "20d", "--max-wait", "31d"], _job, USER,
         ("30 days",), env=FAKE_AWS),
    Case("sm-run-local-work-dir-with-checkpoints", ["sagemaker", "run-local", "--job-config", "job.yaml",
                                                    "--work-dir", "."], _job_and_checkpoints, USER,
         ("--work-dir", "checkpoints/", "Fix:"), env=FAKE_AWS),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_families(case: Case, tmp_path: Path) -> None:
    run_case(case, tmp_path)
