"""Issue 21, one write gateway: outputs over a command's inputs, over a run's files, over files
the user made (rectrain never wrote them). The commands the first campaign never attacked
(`runs compare --plot/--out`, `ckpt extend-dict -o`, `ckpt download -o`, `evaluate --report`,
`train --checkpoint-dir`, `data split/unpack/pack -o`, `config build`'s side files), on the
session's real trained run and exported model. Each must exit 2 naming the file it refuses and
the fix, change no file, and leave nothing behind."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.hostile import world
from tests.hostile.harness import Case, raise_failure

USER = 2


def R(id: str, argv, setup, says=(), **kw) -> Case:  # noqa: A002 - a refusal case
    return Case(id, argv, setup, kw.pop("code", USER), tuple(says) + ("Fix:",), leaves_nothing=True, **kw)


_world = world.setup
_both = world.steps


def _write(rel: str, data: bytes):
    def go(tmp: Path) -> None:
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_bytes(data)
    return go


def _other_figure(tmp: Path) -> None:
    """run2's curves.png: a figure of its own (the copy of the run would draw the same one)."""
    from PIL import Image

    Image.new("RGB", (64, 48), "red").save(tmp / "run2" / "curves.png")


def _new_dict(tmp: Path) -> None:
    (tmp / "new.txt").write_text((tmp / "data" / "dict.txt").read_text(encoding="utf-8") + "Z\n",
                                 encoding="utf-8")


def _weights_copy(tmp: Path) -> None:
    (tmp / "w.pdparams").write_bytes((tmp / "run" / "checkpoints" / "best_accuracy.pdparams").read_bytes())


def _in_snapshot(tmp: Path) -> str:
    """The weights inside the run's verified `latest` snapshot (its folder name is only known
    once the run is there)."""
    return str(world.snapshot_file(tmp / "run"))


def _download_source(tmp: Path) -> None:
    src = tmp / "src" / "w.pdparams"
    src.parent.mkdir()
    src.write_bytes(b"pretrained weights from a mirror" * 100)


SRC_SHA = hashlib.sha256(b"pretrained weights from a mirror" * 100).hexdigest()
DOWNLOAD = ["ckpt", "download", "mirror-model", "--url", "file://{tmp}/src/w.pdparams"]
EXTEND = ["ckpt", "extend-dict", "--pretrained", "run/checkpoints/best_accuracy.pdparams", "--base-dict",
          "data/dict.txt", "--dict", "new.txt"]
COMPARE = ["runs", "compare", "run", "run2"]
EVALUATE = ["evaluate", "--model", "model", "--labels", "data/val.txt", "--device", "cpu"]
TRAIN = ["train", "--config", "cfg/train.yml", "--device", "cpu", "--display", "plain", "--max-steps", "2",
         "--no-tensorboard", "--run-dir", "newrun"]
BUILD = ["config", "build", "--base", "crnn-mv3", "--train-labels", "data/train.txt", "--val-labels",
         "data/val.txt", "--dict", "data/dict.txt", "--device", "cpu", "--batch-size", "4"]
USER_TEXT = b"my own notes, not written by rectrain\n"
USER_MD = b"# my comparison of last week's runs\n"

CASES = [
    # runs compare: --plot writes a PNG over anything, --out replaces a user's compare.md
    R("compare-plot-over-metrics", COMPARE + ["--plot", "run/metrics.jsonl"], _world("run", "run2"),
      ("metrics.jsonl",)),
    R("compare-plot-over-train-log", COMPARE + ["--plot", "run2/train.log"], _world("run", "run2"),
      ("train.log",)),
    R("compare-plot-over-run-state", COMPARE + ["--plot", "run/run-state.json"], _world("run", "run2"),
      ("run-state.json",)),
    R("compare-plot-over-label-file", COMPARE + ["--plot", "data/train.txt"], _world("run", "run2", "data"),
      ("train.txt",)),
    R("compare-plot-over-dataset-image", COMPARE + ["--plot", "data/images/img_000.png"],
      _world("run", "run2", "data"), ("img_000.png",)),
    R("compare-out-over-user-compare-md", COMPARE + ["--out", "notes"],
      _world("run", "run2", then=_write("notes/compare.md", USER_MD)), ("compare.md",)),
    R("compare-out-over-user-compare-json", COMPARE + ["--out", "notes"],
      _world("run", "run2", then=_write("notes/compare.json", b'{"mine": true}\n')), ("compare.json",)),
    R("compare-out-is-a-label-file", COMPARE + ["--out", "data/val.txt"], _world("run", "run2", "data"),
      ("val.txt",)),
    # monitor / evaluate figures over PNG files that are not theirs
    R("monitor-plot-over-dataset-image", ["monitor", "run", "--plot", "data/images/img_001.png"],
      _world("run", "data"), ("img_001.png",)),
    R("monitor-plot-over-another-runs-curves", ["monitor", "run", "--plot", "run2/curves.png"],
      _world("run", "run2", then=_other_figure), ("curves.png",)),
    R("evaluate-grid-over-run-curves", EVALUATE + ["--grid", "run/curves.png"], _world("data", "model",
                                                                                       "run"),
      ("curves.png",)),
    # ckpt extend-dict -o: over a user's weights, its own inputs, a verified snapshot
    R("extend-dict-over-user-weights", EXTEND + ["-o", "my.pdparams"],
      _world("data", "run", then=_both(_new_dict, _write("my.pdparams", b"my fine-tuned weights"))),
      ("my.pdparams",)),
    R("extend-dict-over-its-pretrained", ["ckpt", "extend-dict", "--pretrained", "w.pdparams", "--base-dict",
                                          "data/dict.txt", "--dict", "new.txt", "-o", "w.pdparams"],
      _world("data", "run", then=_both(_new_dict, _weights_copy)), ("w.pdparams",)),
    R("extend-dict-over-new-dict", EXTEND + ["-o", "new.txt"], _world("data", "run", then=_new_dict),
      ("new.txt",)),
    R("extend-dict-over-engine-latest", EXTEND + ["-o", "run/checkpoints/latest.pdparams"],
      _world("data", "run", then=_new_dict), ("latest.pdparams",)),
    R("extend-dict-into-verified-snapshot", EXTEND + ["-o", _in_snapshot], _world("data", "run",
                                                                                  then=_new_dict),
      ("latest.pdparams",)),
    # ckpt download -o: replaces a user's file, or writes its .sha256 beside over a user's one
    R("download-over-user-file", DOWNLOAD + ["--sha256", SRC_SHA, "-o", "mine.pdparams"],
      _both(_download_source, _write("mine.pdparams", b"my only copy of last year's model")),
      ("mine.pdparams",)),
    R("download-into-folder-over-user-file", DOWNLOAD + ["--sha256", SRC_SHA, "-o", "weights/"],
      _both(_download_source, _write("weights/w.pdparams", b"my weights of the same name")),
      ("w.pdparams",)),
    # unpinned: only https or a loopback mirror (issue 25); the sidecar is claimed before connecting
    R("download-sidecar-over-user-file", DOWNLOAD[:-1] + ["http://127.0.0.1:9/w.pdparams", "--trust-unpinned",
                                                          "-o", "dl/"],
      _both(_download_source, _write("dl/w.pdparams.sha256",
                                     b"my checksum notes\n")), ("w.pdparams.sha256",)),
    # evaluate --report: a folder of the user's
    R("evaluate-report-over-user-index", EVALUATE + ["--report", "reports"],
      _world("data", "model", then=_write("reports/index.md", USER_MD)), ("index.md",)),
    R("evaluate-report-over-user-evaluation-json", EVALUATE + ["--report", "reports"],
      _world("data", "model", then=_write("reports/evaluation.json", b'{"acc": 0.99, "mine": 1}\n')),
      ("evaluation.json",)),
    R("evaluate-report-is-the-label-file", EVALUATE + ["--report", "data/val.txt"], _world("data", "model"),
      ("val.txt",)),
    # train --checkpoint-dir: the run dir is guarded, the checkpoint dir is not
    R("train-checkpoint-dir-over-user-config", TRAIN + ["--checkpoint-dir", "mine"],
      _world("data", "cfg", then=_write("mine/config.yml", b"my: own config\n")), ("config.yml",)),
    R("train-checkpoint-dir-is-the-dataset", TRAIN + ["--checkpoint-dir", "data"], _world("data", "cfg"),
      (("train.txt", "dict.txt", "val.txt", "images"),)),
    R("train-checkpoint-dir-of-another-run", TRAIN + ["--checkpoint-dir", "run/checkpoints"],
      _world("data", "cfg", "run"), (("run/checkpoints", "another run", "other run"),)),
    R("train-restart-over-another-runs-checkpoints", TRAIN + ["--checkpoint-dir", "run/checkpoints",
                                                              "--restart"],
      _world("data", "cfg", "run"), (("run/checkpoints", "another run", "other run"),)),
    R("train-checkpoint-dir-is-cwd", TRAIN + ["--checkpoint-dir", "."],
      _world("data", "cfg", then=_write("model_v1.pdparams", b"my weights")), (("current folder",
                                                                                "model_v1.pdparams"),)),
    # data split / unpack / pack: a user's file of the same name in the output folder
    R("split-over-user-val", ["data", "split", "data/train.txt", "-o", "out"],
      _world("data", then=_write("out/val.txt", USER_TEXT)), ("val.txt",)),
    R("unpack-over-user-file", ["data", "unpack", "packed", "-o", "out"],
      _world("data", then=_both(lambda t: world.rectrain("data", "pack", "data", "-o", "packed", cwd=t),
                                _write("out/train.txt", b"images/mine.png\tmy own label\n"))),
      ("train.txt",)),
    R("pack-over-user-manifest", ["data", "pack", "data", "-o", "out"],
      _world("data", then=_write("out/manifest.jsonl", b'{"mine": 1}\n')), ("manifest.jsonl",)),
    # files rectrain did not write, by commands without --force
    R("dict-over-user-notes", ["data", "dict", "data/train.txt", "-o", "notes.txt"],
      _world("data", then=_write("notes.txt", USER_TEXT)), ("notes.txt",)),
    R("validate-json-over-user-json", ["data", "validate", "data/val.txt", "--no-images", "--json",
                                       "settings.json"],
      _world("data", then=_write("settings.json", b'{"theme": "dark"}\n')), ("settings.json",)),
    R("validate-json-over-run-state", ["data", "validate", "data/val.txt", "--no-images", "--json",
                                       "run/run-state.json"], _world("data", "run"), ("run-state.json",)),
    R("validate-clean-over-user-notes", ["data", "validate", "data/val.txt", "--no-images", "--write-clean",
                                         "notes.txt"], _world("data", then=_write("notes.txt", USER_TEXT)),
      ("notes.txt",)),
    # config build: its side files (OUT.base.yml, OUT.diff.md), a user's config, a run's config
    R("build-over-user-config", BUILD + ["-o", "my.yml"],
      _world("data", then=_write("my.yml", b"# tuned by hand over two weeks\nGlobal: {epoch_num: 500}\n")),
      ("my.yml",)),
    R("build-diff-md-over-user-file", BUILD + ["-o", "c.yml"],
      _world("data", then=_write("c.diff.md", b"# my notes on c.yml\n")), ("c.diff.md",)),
    R("build-base-copy-over-its-base", ["config", "build", "--base", "b.base.yml", "--train-labels",
                                        "data/train.txt", "--val-labels", "data/val.txt", "--dict",
                                        "data/dict.txt", "--device", "cpu", "-o", "b.yml"],
      _world("data", "cfg", then=lambda t: (t / "b.base.yml").write_bytes(
          b"# my base, with comments\n" + (t / "cfg" / "train.yml").read_bytes())), ("b.base.yml",)),
    R("build-over-run-config", BUILD + ["-o", "run/config.yml"], _world("data", "run"), ("config.yml",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_gateway(case: Case, case_results) -> None:  # noqa: ANN001
    raise_failure(case_results, case)
