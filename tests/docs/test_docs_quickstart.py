"""The command blocks of data_preparation/QUICKSTART.md (and README.md) that are marked
runnable (a fenced block whose info string is ``bash runnable``) run as written, in order, in a
temp folder that holds a copy of data_preparation/, with the venv first on PATH and a real
S3 server (SeaweedFS on loopback) in the standard AWS_* variables. Also the shell recipes in
data_preparation/scripts/."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "data_preparation" / "QUICKSTART.md"
SCRIPTS = ROOT / "data_preparation" / "scripts"
OPEN = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<info>[^`]*)$")
BLOCK_TIMEOUT = 600


def runnable_blocks(path: Path) -> List[Tuple[int, str]]:
    """(line number, code) of every fenced block whose info string has the word ``runnable``."""
    blocks: List[Tuple[int, str]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = OPEN.match(lines[i])
        if not match:
            i += 1
            continue
        fence, info, start = match.group("fence"), match.group("info").split(), i + 1
        body: List[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        i += 1
        if info and info[0] in ("bash", "sh", "shell", "console") and "runnable" in info[1:]:
            blocks.append((start, "\n".join(body)))
    return blocks


def shell_env(extra: Dict[str, str]) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["VIRTUAL_ENV"] = str(Path(sys.executable).parent.parent)
    env.update(extra)
    return env


def run_blocks(doc: Path, cwd: Path, env: Dict[str, str]) -> int:
    blocks = runnable_blocks(doc)
    for line, code in blocks:
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=BLOCK_TIMEOUT)
        assert proc.returncode == 0, (
            f"{doc.relative_to(ROOT)}:{line}: block failed with exit {proc.returncode}\n"
            f"--- block ---\n{code}\n--- stdout ---\n{proc.stdout[-4000:]}\n"
            f"--- stderr ---\n{proc.stderr[-4000:]}")
    return len(blocks)


def workspace(tmp_path: Path) -> Path:
    work = tmp_path / "repo"
    work.mkdir()
    shutil.copytree(ROOT / "data_preparation", work / "data_preparation")
    if (ROOT / "docs").is_dir():
        shutil.copytree(ROOT / "docs", work / "docs")
    return work


def test_block_extraction(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("text\n```bash runnable\necho one\necho two\n```\n```bash\necho no\n```\n"
                   "```python runnable\nprint('no')\n```\n```bash runnable\necho three\n```\n",
                   encoding="utf-8")
    assert runnable_blocks(doc) == [(2, "echo one\necho two"), (12, "echo three")]


def test_quickstart_has_runnable_blocks_for_every_path() -> None:
    code = "\n".join(c for _, c in runnable_blocks(QUICKSTART))
    for needed in ["rectrain s3 check", "rectrain data validate", "rectrain data dict",
                   "rectrain data split", "rectrain data convert --from ppocrlabel",
                   "rectrain data convert --from icdar2015", "rectrain data synth",
                   "rectrain data pack", "rectrain s3 push", "rectrain s3 pull"]:
        assert needed in code, f"QUICKSTART has no runnable block with {needed!r}"


@pytest.mark.slow
def test_quickstart_runs_as_written(tmp_path: Path, seaweed_factory) -> None:  # noqa: ANN001
    server = seaweed_factory()
    work = workspace(tmp_path)
    env = shell_env(server.env)
    assert run_blocks(QUICKSTART, work, env) >= 8
    # What the quickstart promises is really there.
    words = work / "work" / "words"
    for name in ["train.txt", "val.txt", "dict.txt"]:
        assert (words / name).is_file(), name
    client = server.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="rectrain",
                                                      Prefix="datasets/sample-words/").get("Contents", [])]
    assert "datasets/sample-words/manifest.jsonl" in keys
    assert "datasets/sample-words/train.txt" in keys
    assert sum(k.endswith(".png") for k in keys) == 40
    assert (work / "work" / "synth-back" / "train.txt").read_bytes() == \
        (work / "work" / "synth" / "train.txt").read_bytes()
    # The hand-off to training really trained and uploaded complete checkpoints.
    assert (work / "work" / "run" / "metrics.jsonl").stat().st_size > 0
    ckpt_keys = [o["Key"] for o in client.list_objects_v2(Bucket="rectrain",
                                                           Prefix="checkpoints/sample/").get("Contents", [])]
    assert any(k.endswith("_COMPLETE.json") for k in ckpt_keys), ckpt_keys


@pytest.mark.slow
def test_readme_runnable_blocks_run_as_written(tmp_path: Path, seaweed_factory) -> None:  # noqa: ANN001
    readme = ROOT / "README.md"
    if not readme.exists() or not runnable_blocks(readme):
        pytest.skip("README.md has no block marked runnable")
    server = seaweed_factory()
    assert run_blocks(readme, workspace(tmp_path), shell_env(server.env)) >= 1


@pytest.mark.parametrize("script", sorted(SCRIPTS.glob("*.sh")), ids=lambda p: p.name)
def test_recipe_usage(script: Path) -> None:
    assert os.access(script, os.X_OK), f"{script.name} is not executable"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    proc = subprocess.run([str(script)], capture_output=True, text=True, env=shell_env({}), timeout=30)
    assert proc.returncode == 2
    assert "Usage:" in proc.stdout


@pytest.mark.slow
def test_recipes_end_to_end(tmp_path: Path, seaweed_factory) -> None:  # noqa: ANN001
    server = seaweed_factory()
    client = server.client()
    client.create_bucket(Bucket="recipes")
    env = shell_env(server.env)
    work = workspace(tmp_path)
    shutil.copytree(work / "data_preparation" / "sample" / "recognition", work / "words")

    def run(*argv: str) -> str:
        proc = subprocess.run([str(a) for a in argv], cwd=work, env=env, capture_output=True, text=True,
                              timeout=BLOCK_TIMEOUT)
        assert proc.returncode == 0, (f"{argv}: exit {proc.returncode}\n{proc.stdout[-3000:]}\n"
                                      f"{proc.stderr[-3000:]}")
        return proc.stdout

    run(SCRIPTS / "prepare_from_labels.sh", "words", "s3://recipes/datasets/words")
    run(SCRIPTS / "prepare_from_detection.sh", "ppocrlabel",
        "data_preparation/sample/detection/pages/Label.txt", "crops", "s3://recipes/datasets/crops")
    env.update(PACK="1", SHARD_SIZE="1MB", EFFECTS="none")
    run(SCRIPTS / "prepare_synthetic.sh", "40", "synth", "s3://recipes/datasets/synth")
    keys = {o["Key"] for o in client.list_objects_v2(Bucket="recipes").get("Contents", [])}
    for prefix in ["datasets/words/", "datasets/crops/"]:
        for name in ["manifest.jsonl", "train.txt", "val.txt", "dict.txt"]:
            assert prefix + name in keys, prefix + name
    # Packed: shards and the manifest only, no loose images.
    synth = sorted(k for k in keys if k.startswith("datasets/synth/"))
    assert "datasets/synth/manifest.jsonl" in synth and "datasets/synth/shard-00000.tar" in synth, synth
    assert not any(k.endswith(".png") for k in synth)
