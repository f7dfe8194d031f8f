"""docs/deploy.md as written: its ``bash runnable`` blocks (train on the sample, export --onnx,
evaluate with both backends, predict) run in order in a copy of data_preparation/, then its
``python paddleocr3`` blocks run in the PaddleOCR 3.x environment (tests/paddleocr3_env.py) on
the model they exported; the names `export` printed are the ones the doc uses."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import List, Tuple

import pytest
from test_docs_quickstart import OPEN, ROOT, run_blocks, shell_env, workspace

DOC = ROOT / "docs" / "deploy.md"


def python_blocks(path: Path, tag: str = "paddleocr3") -> List[Tuple[int, str]]:
    """(line, code) of the fenced ``python <tag>`` blocks."""
    blocks: List[Tuple[int, str]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = OPEN.match(lines[i])
        if match and match.group("info").split()[:2] == ["python", tag]:
            start, body, i = i + 1, [], i + 1
            while i < len(lines) and not lines[i].strip().startswith(match.group("fence")):
                body.append(lines[i])
                i += 1
            blocks.append((start, "\n".join(body)))
        i += 1
    return blocks


@pytest.fixture(scope="module")
def deploy_workspace(tmp_path_factory) -> Path:
    import rectrain

    work = workspace(tmp_path_factory.mktemp("deploy-doc"))
    # The rectrain under test, wherever the venv's console script points.
    source = str(Path(rectrain.__file__).resolve().parents[1])
    assert run_blocks(DOC, work, shell_env({"PYTHONPATH": source})) >= 2
    return work


@pytest.mark.slow
def test_deploy_doc_commands_run_as_written(deploy_workspace: Path) -> None:
    model = deploy_workspace / "work" / "model"
    info = json.loads((model / "model.json").read_text(encoding="utf-8"))
    assert (model / "inference.onnx").is_file() and info["deploy"]["paddleocr3"]["loadable"]
    paddle = json.loads((deploy_workspace / "work" / "eval.json").read_text(encoding="utf-8"))
    onnx = json.loads((deploy_workspace / "work" / "eval-onnx.json").read_text(encoding="utf-8"))
    assert paddle["runtime"]["backend"] == "paddle-inference"
    assert onnx["runtime"]["backend"] == "onnxruntime"
    assert [s["prediction"] for s in paddle["samples"]] == [s["prediction"] for s in onnx["samples"]]
    # The doc's load lines use the model name export chose for this (Thai) model.
    name = info["deploy"]["paddleocr3"]["model_name"]
    used = set(re.findall(r'model_name="([^"]+)"', DOC.read_text(encoding="utf-8").split(
        "**Fixed-shape models")[0]))
    assert used == {name}


@pytest.mark.slow
@pytest.mark.index
@pytest.mark.timeout(3600)
def test_deploy_doc_python_runs_in_paddleocr3(deploy_workspace: Path, paddleocr3_python) -> None:  # noqa: ANN001
    import paddleocr3_env

    blocks = python_blocks(DOC)
    assert len(blocks) >= 2
    for line, code in blocks:
        proc = subprocess.run([str(paddleocr3_python), "-c", code], cwd=deploy_workspace,
                              env=paddleocr3_env.reader_env(deploy_workspace / "paddlex-cache"),
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"docs/deploy.md:{line}:\n{code}\n{proc.stderr[-3000:]}"
