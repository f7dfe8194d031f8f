"""``rectrain export --onnx``: an ``inference.onnx`` beside the Paddle program, converted by
paddle2onnx (pinned in requirements.txt) and checked with ONNX Runtime in a separate process
(:mod:`rectrain.model.onnx_convert`), so that nothing of paddle2onnx stays in the caller.

The model folder then loads in ONNX Runtime directly, in ``rectrain evaluate/predict --backend
onnx`` (the engine's own inference code with its ONNX Runtime branch) and in PaddleOCR 3.x with
``engine="onnxruntime"`` (PaddleX reads ``inference.onnx`` from the same folder).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

from rectrain.errors import EnvironmentProblem, InternalError
from rectrain.logs import get_logger
from rectrain.outputs import open_stream

log = get_logger("model.onnx")

ONNX_FILE = "inference.onnx"
_NEEDED = ("paddle2onnx", "onnx", "onnxruntime")


def _check_installed() -> None:
    missing = [m for m in _NEEDED if importlib.util.find_spec(m) is None]
    if missing:
        raise EnvironmentProblem(
            f"ONNX export needs {', '.join(missing)}, not installed in {sys.executable}.",
            "run ./setup.sh (it installs the pinned paddle2onnx and onnxruntime), or "
            "pip install -r requirements.txt.")


def convert_to_onnx(model_dir: Path, program: Path, params: Path, image_shape: List[int],
                    fixed: bool, log_path: Path) -> Dict[str, Any]:
    """Write ``model_dir/inference.onnx``; returns what model.json records under
    ``deploy.onnx``. Fails (exit 3) when the conversion fails or ONNX Runtime's outputs differ
    from Paddle's on a test input by more than the converter's tolerance; the converter's
    output is in ``log_path`` either way."""
    _check_installed()
    out = Path(model_dir) / ONNX_FILE
    c, h, w = (int(v) for v in image_shape[:3])
    argv = [sys.executable, "-u", "-m", "rectrain.model.onnx_convert", str(program), str(params),
            str(out), str(c), str(h), str(w), "1" if fixed else "0"]
    # Belt and braces: whatever inside paddle2onnx calls pip finds no index.
    env = dict(os.environ, PIP_NO_INDEX="1", POLYGRAPHY_AUTOINSTALL_DEPS="0",
               CUDA_VISIBLE_DEVICES="", PYTHONPATH=os.pathsep.join(
                   [str(Path(__file__).resolve().parents[2])] +
                   ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    log.debug("command: %s", " ".join(argv))
    with open_stream(log_path, "w") as fh:
        proc = subprocess.run(argv, env=env, stdout=fh, stderr=subprocess.STDOUT)
    output = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    lines = [line for line in output if line.startswith('{"opset"')]
    if proc.returncode != 0 or not lines or not out.is_file():
        tail = "\n".join(output[-12:])
        raise InternalError(f"the ONNX conversion failed (exit {proc.returncode}):\n{tail}",
                            f"read {log_path}; export without --onnx meanwhile, and report it.")
    result: Dict[str, Any] = json.loads(lines[-1])
    result["file"] = ONNX_FILE
    return result
