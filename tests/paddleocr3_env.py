"""A separate virtual environment with PaddleOCR 3.x (tests/paddleocr3-requirements.txt), where
the tests load exported models the way users deploy them: software nobody here wrote judges
the export.

Created once, outside the repository, in ``$RECTRAIN_TEST_CACHE`` (default
``~/.cache/rectrain-tests``) under a name keyed by the requirements file and the Python version,
so a changed pin makes a new one and later runs reuse it at once. The first creation downloads
about 500 MB (1.5 GB installed) and takes a few minutes; a lock keeps two test runs from
building it at the same time, and a marker written last means a half-built one is rebuilt.

Run alone to create it ahead of a test run: ``venv/bin/python tests/paddleocr3_env.py``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "paddleocr3-requirements.txt"
MARKER = ".rectrain-complete"


class IndexUnreachable(Exception):
    """The package index cannot be reached, so the environment cannot be created."""


def index_reachable(url: str = "https://pypi.org/simple/pip/") -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10):  # noqa: S310 - a fixed https URL
            return True
    except OSError:
        return False


def venv_dir() -> Path:
    base = Path(os.environ.get("RECTRAIN_TEST_CACHE") or Path.home() / ".cache" / "rectrain-tests")
    key = hashlib.sha256(REQUIREMENTS.read_bytes()
                         + f"{sys.version_info[0]}.{sys.version_info[1]}".encode()).hexdigest()[:12]
    return base / f"paddleocr3-venv-{key}"


def python_of(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run(argv: list, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout)


def ensure(log=print) -> Path:  # noqa: ANN001
    """The PaddleOCR 3.x environment's Python, created if needed. Raises IndexUnreachable when
    it must be created and the package index cannot be reached; RuntimeError when pip fails."""
    venv = venv_dir()
    python = python_of(venv)
    if (venv / MARKER).is_file():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be building it: wait for it
        if (venv / MARKER).is_file():
            return python
        if venv.exists():
            shutil.rmtree(venv)  # a half-built one (no marker)
        log(f"creating the PaddleOCR 3.x test environment in {venv} (once; a few minutes)")
        made = _run([sys.executable, "-m", "venv", venv], timeout=300)
        if made.returncode != 0:
            raise RuntimeError(f"python -m venv failed: {made.stderr[-2000:]}")
        pip = _run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q",
                    "-r", REQUIREMENTS], timeout=3600)
        if pip.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            if not index_reachable():
                raise IndexUnreachable("the package index (pypi.org) cannot be reached, so the "
                                       "PaddleOCR 3.x test environment cannot be created")
            raise RuntimeError(f"pip install -r {REQUIREMENTS.name} failed:\n{pip.stderr[-3000:]}")
        check = _run([python, "-c", "import paddleocr, paddlex, onnxruntime, paddle"], timeout=300)
        if check.returncode != 0:
            raise RuntimeError(f"the PaddleOCR 3.x environment does not import: {check.stderr[-2000:]}")
        (venv / MARKER).write_text(REQUIREMENTS.read_text(encoding="utf-8"), encoding="utf-8")
    return python


def reader_env(cache: Optional[Path] = None) -> dict:
    """Environment for running code in it: no rectrain on the path, PaddleX offline and quiet."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK"] = "True"  # no probe of model hosts at import
    if cache is not None:
        env["PADDLE_PDX_CACHE_HOME"] = str(cache)
    return env


def read(python: Path, spec: Path, workdir: Path, timeout: int = 1800) -> dict:
    """Run tests/paddleocr3_read.py on ``spec`` in the environment; its JSON answer."""
    import json

    out = workdir / "paddleocr3-out.json"
    proc = subprocess.run([str(python), str(HERE / "paddleocr3_read.py"), str(spec), str(out)],
                          capture_output=True, text=True, timeout=timeout, cwd=str(workdir),
                          env=reader_env(workdir / "paddlex-cache"))
    if proc.returncode != 0 or not out.is_file():
        raise RuntimeError(f"paddleocr3_read.py failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(out.read_text(encoding="utf-8"))


if __name__ == "__main__":
    print(ensure())
