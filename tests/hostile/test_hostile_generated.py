"""Issue 21, the family generated from the CLI itself: every option that writes a path is
pointed (a) at an existing file the user made (rectrain never wrote it), (b) at one of the
command's own inputs, (c) at a run's file (metrics.jsonl, train.log, run-state.json, a file
inside a verified snapshot) or, for a folder, a verified snapshot folder. Each must exit 2,
naming what it refuses and the fix, with no file changed and nothing left behind (no --force
is given: with --force the rules may allow (a)).

The options come from the argparse parser (``rectrain.cli.main.build_parser``, the only
rectrain module these tests import). An option whose name, metavar or help looks like an
output must be in OUTPUTS (with the recipe that runs it) or in NOT_OUTPUTS (with the reason):
a new output option fails :func:`test_every_output_looking_option_is_attacked_or_listed` the
day it is added, until it is attacked here.
"""

from __future__ import annotations

import argparse
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pytest

from tests.cli_actions import every_action
from tests.hostile import world
from tests.hostile.harness import Case, raise_failure

USER = 2
FAKE_AWS = world.CLOSED_PORT


# -- the parser, walked ---------------------------------------------------------------------

def cli_options() -> Dict[str, argparse.Action]:
    """{"data validate --json": action, "ckpt pull dest": action, ...}: every option and
    positional of every command that takes a value (flags without one are skipped)."""
    found: Dict[str, argparse.Action] = {}
    for path, action in every_action():
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)) or action.nargs == 0:
            continue
        longs = [o for o in action.option_strings if o.startswith("--")] or list(action.option_strings)
        found[" ".join(path + ((longs[0] if longs else action.dest),))] = action
    return found


OUTPUT_WORDS = re.compile(r"\b(out|outs|output|outputs|report|plot|png|json|grid|write|writes|written|"
                          r"save|dest|folder|dir|directory|workdir)\b", re.I)


def looks_like_output(action: argparse.Action) -> bool:
    text = " ".join([action.dest or "", str(action.metavar or ""), action.help or "",
                     " ".join(action.option_strings)]).replace("_", " ").replace("-", " ")
    return "-o" in action.option_strings or bool(OUTPUT_WORDS.search(text)) or \
        (action.dest or "").endswith(("dir", "out"))


# -- what each output option is, and how to run it -------------------------------------------

@dataclass(frozen=True)
class Out:
    argv: Tuple[str, ...]  # the command with its inputs; the option and its value are appended
    kind: str  # "file" or "folder"
    parts: Tuple[str, ...] = ("data",)  # world parts it needs (run is always added)
    ext: str = ".txt"  # a file output's kind of file
    inputs: Tuple[str, ...] = ()  # files the command reads (case b)
    writes: str = ""  # a folder output: one name it writes there (case a)
    setup: Optional[Callable[[Path], None]] = None
    env: Tuple[Tuple[str, str], ...] = ()
    timeout: float = 180.0


def _ppocrlabel(tmp: Path) -> None:
    boxes = '[{"transcription": "ok", "points": [[0, 0], [40, 0], [40, 20], [0, 20]], "difficult": false}]'
    (tmp / "Label.txt").write_text(f"data/images/img_000.png\t{boxes}\n", encoding="utf-8")


def _words(tmp: Path) -> None:
    (tmp / "words.txt").write_text("สวัสดี\nไทย\n", encoding="utf-8")


def _packed(tmp: Path) -> None:
    world.rectrain("data", "pack", "data", "-o", "packed", cwd=tmp)


def _new_dict(tmp: Path) -> None:
    (tmp / "new.txt").write_text((tmp / "data" / "dict.txt").read_text(encoding="utf-8") + "Z\n",
                                 encoding="utf-8")


def _mirror(tmp: Path) -> None:
    (tmp / "src").mkdir()
    (tmp / "src" / "w.pdparams").write_bytes(MIRROR_BYTES)


_job = world.job()


MIRROR_BYTES = b"pretrained weights from a mirror" * 64


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


TRAIN = ("train", "--config", "cfg/train.yml", "--device", "cpu", "--display", "plain", "--max-steps", "2",
         "--no-tensorboard")
EVAL = ("evaluate", "--model", "model", "--labels", "data/val.txt", "--device", "cpu")
OUTPUTS: Dict[str, Out] = {
    "data validate --json": Out(("data", "validate", "data/val.txt", "--dict", "data/dict.txt",
                                 "--no-images"),
                                "file", ext=".json", inputs=("data/val.txt", "data/dict.txt")),
    "data validate --write-clean": Out(("data", "validate", "data/val.txt", "--dict", "data/dict.txt",
                                        "--no-images"), "file", inputs=("data/val.txt", "data/dict.txt")),
    "data dict --out": Out(("data", "dict", "data/train.txt", "--base", "data/dict.txt"), "file",
                           inputs=("data/train.txt", "data/dict.txt")),
    "data split --out": Out(("data", "split", "data/train.txt"), "folder", inputs=("data/train.txt",),
                            writes="val.txt"),
    "data convert --out": Out(("data", "convert", "Label.txt", "--from", "ppocrlabel"), "folder",
                              inputs=("Label.txt",), writes="labels.txt", setup=_ppocrlabel),
    "data synth --out": Out(("data", "synth", "--words", "words.txt", "-n", "2", "--workers", "1"), "folder",
                            inputs=("words.txt",), writes="labels.txt", setup=_words),
    "data report --out": Out(("data", "report", "data/train.txt", "--samples", "2"), "folder",
                             inputs=("data/train.txt",), writes="samples.png"),
    "data pack --out": Out(("data", "pack", "data"), "folder", inputs=("data/train.txt",),
                           writes="manifest.jsonl"),
    "data unpack --out": Out(("data", "unpack", "packed"), "folder", inputs=("packed/manifest.jsonl",),
                             writes="train.txt", setup=_packed),
    "config build --out": Out(("config", "build", "--base", "crnn-mv3", "--train-labels", "data/train.txt",
                               "--val-labels", "data/val.txt", "--dict", "data/dict.txt", "--device", "cpu",
                               "--batch-size", "4"),
                              "file", ext=".yml", inputs=("data/train.txt", "data/val.txt", "data/dict.txt")),
    "train --run-dir": Out(TRAIN, "folder", parts=("data", "cfg"), inputs=("cfg/train.yml",),
                           writes="train.log"),
    "train --checkpoint-dir": Out(TRAIN + ("--run-dir", "newrun"), "folder", parts=("data", "cfg"),
                                  inputs=("cfg/train.yml",), writes="config.yml"),
    "monitor --plot": Out(("monitor", "run"), "file", parts=(), ext=".png", inputs=("run/config.yml",)),
    "runs compare --out": Out(("runs", "compare", "run", "run2"), "folder", parts=("run2",),
                              inputs=("run2/config.yml",), writes="compare.md"),
    "runs compare --plot": Out(("runs", "compare", "run", "run2"), "file", parts=("run2",), ext=".png",
                               inputs=("run2/config.yml",)),
    "ckpt extend-dict --out": Out(("ckpt", "extend-dict", "--pretrained",
                                   "run/checkpoints/best_accuracy.pdparams",
                                   "--base-dict", "data/dict.txt", "--dict", "new.txt"), "file",
                                  ext=".pdparams",
                                  inputs=("run/checkpoints/best_accuracy.pdparams", "data/dict.txt",
                                          "new.txt"),
                                  setup=_new_dict),
    "ckpt download --out": Out(("ckpt", "download", "mirror-model", "--url", "file://{tmp}/src/w.pdparams",
                                "--sha256", _sha(MIRROR_BYTES)), "file", parts=(), ext=".pdparams",
                               inputs=("src/w.pdparams",), setup=_mirror),
    "export --out": Out(("export", "--run-dir", "run"), "folder", inputs=("run/config.yml",),
                        writes="model.json"),
    "evaluate --json": Out(EVAL, "file", parts=("data", "model"), ext=".json",
                           inputs=("data/val.txt", "model/inference.yml")),
    "evaluate --grid": Out(EVAL, "file", parts=("data", "model"), ext=".png",
                           inputs=("data/images/img_003.png", "data/val.txt")),
    "evaluate --report": Out(EVAL, "folder", parts=("data", "model"), inputs=("data/val.txt",),
                             writes="index.md"),
    "sagemaker run-local --work-dir": Out(("sagemaker", "run-local", "--job-config", "job.yaml",
                                           "--max-steps",
                                           "2"), "folder", parts=(), inputs=("job.yaml",), writes="model/",
                                          setup=_job, env=tuple(FAKE_AWS.items()), timeout=120),
    "demo --workdir": Out(("demo", "--steps", "1"), "folder", parts=(), writes="source/", timeout=90),
}

# Options that look like outputs (or hold paths) but are attacked elsewhere or write nothing.
NOT_OUTPUTS: Dict[str, str] = {
    "--log-format": "a choice of log format, not a path",
    "doctor --paddleocr-dir": "an input: the engine checkout (read only)",
    "engine info --paddleocr-dir": "an input: the engine checkout",
    "config presets --paddleocr-dir": "an input: the engine checkout",
    "config build --paddleocr-dir": "an input: the engine checkout",
    "config check --paddleocr-dir": "an input: the engine checkout",
    "train --paddleocr-dir": "an input: the engine checkout",
    "bench loader --paddleocr-dir": "an input: the engine checkout",
    "export --paddleocr-dir": "an input: the engine checkout",
    "evaluate --paddleocr-dir": "an input: the engine checkout",
    "predict --paddleocr-dir": "an input: the engine checkout",
    "sagemaker entrypoint --paddleocr-dir": "an input: the engine checkout in the container",
    "sagemaker train --paddleocr-dir": "an input: the engine checkout in the container",
    "data validate --images-root": "an input: where the images are",
    "data convert --images-root": "an input: where the annotated images are",
    "config build --images-root": "an input: where the images are (written into the config, not to)",
    "config build --val-images-root": "an input: where the validation images are",
    "evaluate --images-root": "an input: where the images are",
    "data convert src": "an input: the detection annotations",
    "data synth --fonts": "an input: a folder of fonts",
    "data report --samples": "a count (numeric ranges: test_hostile_ranges.py)",
    "data pack dir": "an input: the dataset folder",
    "data unpack dir": "an input: the packed dataset",
    "s3 push src": "an input: the local folder uploaded",
    "s3 serve --port": "a port number",
    "s3 serve --data-dir": "the embedded server's own store (SeaweedFS's format, tests/storage); it "
                           "starts a server that runs until Ctrl-C",
    "s3 pull dst": "what it writes depends on the S3 listing: attacked with SeaweedFS in "
                   "test_hostile_s3.py / test_hostile_leftovers.py (--delete, under a file, no manifest)",
    "ckpt pull dest": "what it writes depends on the S3 listing: attacked with SeaweedFS in "
                      "test_hostile_s3.py",
    "ckpt push source": "an input: the run uploaded",
    "ckpt push dest": "an s3:// prefix (the S3 lease: test_hostile_owner.py)",
    "ckpt list source": "an input",
    "ckpt prune source": "an input (prunes only rectrain's own checkpoints)",
    "monitor source": "an input: the run followed",
    "export --run-dir": "an input: the run exported",
    "export --config": "an input: the training config (default RUN_DIR/config.yml)",
    "evaluate --model": "an input: the exported model",
    "evaluate --run-dir": "an input: the run whose MLflow run gets the report (no local write)",
    "evaluate --worst": "a count (numeric ranges: test_hostile_ranges.py)",
    "predict --model": "an input: the exported model",
    "train --checkpoint-every": "a number of minutes (numeric ranges)",
    "train --display": "a choice of display",
    "sagemaker launch --output": "an s3:// prefix for SageMaker's model.tar.gz (no local write)",
    "sagemaker run-local --output": "an s3:// prefix",
    "sagemaker tune --output": "an s3:// prefix",
    "sagemaker policy --output": "an s3:// prefix the printed IAM policy scopes (no local write)",
    "ckpt push --run-id": "a run id written into S3 markers, not a path",
    "train --adopt-run": "a run id to continue (checked against the S3 markers), not a path",
    "sagemaker tune --strategy": "a choice of search strategy",
    "sagemaker download --out": "what it writes comes from DescribeTrainingJob (the SageMaker control "
                                "plane, which cannot run here); its writes go through the same gateway",
    "sagemaker entrypoint --ml-root": "the /opt/ml tree of the SageMaker contract (input/ read; model/, "
                                      "output/, checkpoints/ written by contract), emulated by run-local",
    "sagemaker train --ml-root": "the same command as `sagemaker entrypoint` (see there)",
}


# -- the cases --------------------------------------------------------------------------------

def _user_bytes(ext: str) -> bytes:
    if ext == ".png":
        from PIL import Image

        buf = io.BytesIO()
        Image.new("RGB", (40, 30), "blue").save(buf, format="PNG")  # the user's own picture
        return buf.getvalue()
    return {".json": b'{"mine": true, "note": "my settings"}\n', ".yml": b"my: own config\n",
            ".pdparams": b"my own fine-tuned weights"}.get(ext, b"my own notes, not rectrain's\n")


def _setup(out: Out, then: Optional[Callable[[Path], None]] = None) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        world.place(tmp, "run", *[p for p in out.parts if p != "run"])
        if out.setup:
            out.setup(tmp)
        if then:
            then(tmp)
    return setup


def _put(rel: str, data: bytes) -> Callable[[Path], None]:
    def go(tmp: Path) -> None:
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_bytes(data)
    return go


def _snapshot_file(tmp: Path) -> str:
    return str(world.snapshot_file(tmp / "run"))


def _snapshot_folder(tmp: Path) -> str:
    return str(world.snapshot_file(tmp / "run").parent)


def generated_cases() -> List[Case]:
    cases: List[Case] = []
    for key, out in OUTPUTS.items():
        opt = key.split(" ")[-1]
        flag = "-o" if opt == "--out" and "-o" in _FLAGS.get(key, ()) else opt
        attacks: List[Tuple[str, object, Tuple, Optional[Callable[[Path], None]]]] = []
        if out.kind == "file":
            mine = "mine" + out.ext
            attacks.append(("user-file", mine, (mine,), _put(mine, _user_bytes(out.ext))))
            for rel in out.inputs:
                attacks.append((f"input-{Path(rel).name}", rel, (Path(rel).name,), None))
            for rel in ("run/metrics.jsonl", "run/train.log", "run/run-state.json"):
                if rel not in out.inputs:
                    attacks.append((f"run-{Path(rel).name}", rel, (Path(rel).name,), None))
            attacks.append(("run-snapshot-file", _snapshot_file, (("latest.pdparams", "snapshot"),), None))
        else:
            name = out.writes.rstrip("/")
            inside = f"mine/{name}/thesis.txt" if out.writes.endswith("/") else f"mine/{name}"
            attacks.append(("user-file", "mine", ((name, re.compile(r"\bmine\b")),),
                            _put(inside, _user_bytes(Path(name).suffix))))
            if out.inputs:
                attacks.append((f"input-{Path(out.inputs[0]).name}", out.inputs[0],
                                (Path(out.inputs[0]).name,), None))
            attacks.append(("run-metrics.jsonl", "run/metrics.jsonl", ("metrics.jsonl",), None))
            attacks.append(("run-snapshot-folder", _snapshot_folder, (("snapshot", "s0000"),), None))
        for what, value, says, then in attacks:
            cases.append(Case(f"{key.replace(' ', '-').replace('--', '')}:{what}",
                              list(out.argv) + [flag, value], _setup(out, then), USER, says + ("Fix:",),
                              env=dict(out.env), timeout=out.timeout, leaves_nothing=True))
    return cases


_FLAGS = {key: tuple(action.option_strings) for key, action in cli_options().items()}
CASES = generated_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_generated_output_attack(case: Case, case_results) -> None:  # noqa: ANN001
    raise_failure(case_results, case)


def test_every_output_looking_option_is_attacked_or_listed() -> None:
    """A new option that looks like an output is attacked (OUTPUTS) or explained (NOT_OUTPUTS)."""
    options = cli_options()
    looking = sorted(k for k, a in options.items() if looks_like_output(a))
    unlisted = [k for k in looking if k not in OUTPUTS and k not in NOT_OUTPUTS]
    assert not unlisted, ("options that look like outputs, neither attacked nor explained: "
                          f"{unlisted}. Add each to OUTPUTS (with a recipe) or NOT_OUTPUTS (with why).")
    stale = sorted(k for k in list(OUTPUTS) + list(NOT_OUTPUTS) if k not in options)
    assert not stale, f"listed options the CLI no longer has: {stale}"
    assert not set(OUTPUTS) & set(NOT_OUTPUTS)
    assert all(NOT_OUTPUTS.values())


def test_the_family_attacks_every_listed_output() -> None:
    attacked = {c.id.split(":")[0] for c in CASES}
    assert attacked == {k.replace(" ", "-").replace("--", "") for k in OUTPUTS}
    assert len(CASES) >= 3 * len(OUTPUTS)
