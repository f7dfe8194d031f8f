"""One small real world for the hostile cases that need a trained run or an exported model,
made once per session through the CLI only (black-box: `rectrain train`, `rectrain export`):

    data/   images/, train.txt, val.txt, dict.txt (tests/training/tinydata.py)
    cfg/    train.yml (a CPU CRNN over data/)
    run/    `rectrain train --max-steps 4` (config.yml, metrics.jsonl, train.log,
            run-state.json, checkpoints/ with verified snapshots, curves.png)
    model/  `rectrain export --run-dir run`

:func:`place` copies parts of it into a case's scratch folder (the absolute paths in its text
files rewritten to the copy), so a case that destroys a file destroys only its own copy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, List, Optional, Union

from tests.hostile.harness import cli_env

_ROOT: Optional[Path] = None
TEXT_SUFFIXES = {".yml", ".yaml", ".json", ".jsonl", ".log", ".md", ".txt"}


def rectrain(*argv: str, cwd: Optional[Path] = None, env=None, timeout: float = 600,
             check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "rectrain", *argv], cwd=str(cwd) if cwd else None,
                          env=cli_env(env), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"rectrain {' '.join(argv)}: exit {proc.returncode}\n"
                             f"{(proc.stdout + proc.stderr)[-3000:]}")
    return proc


def engine_missing() -> Optional[str]:
    proc = rectrain("engine", "info", check=False, timeout=300)
    return None if proc.returncode == 0 else (proc.stdout + proc.stderr)[-500:]


def build(root: Path) -> Path:
    from tests.training.tinydata import make_dataset, tiny_config

    data = make_dataset(root / "data")
    tiny_config(data, root / "cfg" / "train.yml", epochs=2)
    rectrain("train", "--config", "cfg/train.yml", "--run-dir", "run", "--device", "cpu",
             "--display", "plain", "--max-steps", "4", "--no-tensorboard", cwd=root)
    rectrain("export", "--run-dir", "run", "-o", "model", cwd=root)
    shutil.rmtree(root / "cfg" / "engine_out", ignore_errors=True)
    global _ROOT
    _ROOT = root
    return root


def root() -> Path:
    assert _ROOT is not None, "request the `world` fixture in this test"
    return _ROOT


def place(tmp: Path, *parts: str) -> None:
    """Copy ``parts`` (data, cfg, run, model) of the world into ``tmp``; ``run2`` is a second
    copy of the run (a run to compare with)."""
    src_root = root()
    for part in parts:
        src = src_root / ("run" if part == "run2" else part)
        shutil.copytree(src, tmp / part, symlinks=True)
        for p in (tmp / part).rglob("*"):
            if p.is_file() and not p.is_symlink() and p.suffix in TEXT_SUFFIXES:
                text = p.read_text(encoding="utf-8", errors="surrogateescape")
                new = text.replace(str(src_root / "run"), str(tmp / ("run2" if part == "run2" else "run")))
                new = new.replace(str(src_root), str(tmp))
                if new != text:
                    p.write_text(new, encoding="utf-8", errors="surrogateescape")


def snapshot_file(run: Path, name: str = "latest", suffix: str = ".pdparams") -> Path:
    """A file inside one of the run's verified snapshot folders (checkpoints/snapshots/s*-NAME-*)."""
    hits = sorted((run / "checkpoints" / "snapshots").glob(f"s*-{name}-*/{name}{suffix}"))
    assert hits, f"no snapshot {name} in {run}"
    return hits[-1]


# -- what the issue-21 cases share ------------------------------------------------------------

def setup(*parts: str, then: Optional[Callable[[Path], None]] = None) -> Callable[[Path], None]:
    """A case's setup: the world's ``parts`` copied into its folder, then ``then``."""
    def go(tmp: Path) -> None:
        place(tmp, *parts)
        if then is not None:
            then(tmp)
    return go


def steps(*fns: Callable[[Path], None]) -> Callable[[Path], None]:
    """Several setup steps, in order."""
    def go(tmp: Path) -> None:
        for fn in fns:
            fn(tmp)
    return go


def train_steps(run_dir: Path) -> List[int]:
    """The global steps of the train records in RUN_DIR/metrics.jsonl (torn lines skipped)."""
    path = run_dir / "metrics.jsonl"
    out: List[int] = []
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("type") == "train":
            out.append(rec.get("global_step"))
    return out


FAKE_CREDS = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}
CLOSED_PORT = dict(FAKE_CREDS, AWS_ENDPOINT_URL="http://127.0.0.1:9")  # refused at once: no S3 there
JOB_HEAD = ("name: thai-rec\nrole: arn:aws:iam::123456789012:role/R\n"
            "image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/rectrain:1\nregion: us-east-1\n"
            "train: s3://bucket/train\nval: s3://bucket/val\noutput: s3://bucket/jobs\n")  # lines 1-7
JOB = JOB_HEAD + "training:\n  preset: th-ppocrv5-mobile\n  dict: dict.txt\n"


def job(text: Union[str, bytes] = JOB, name: str = "job.yaml") -> Callable[[Path], None]:
    """A setup writing a SageMaker job config."""
    def go(tmp: Path) -> None:
        (tmp / name).write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return go
