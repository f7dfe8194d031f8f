"""Find the PaddleOCR training code: an official checkout (``--paddleocr-dir`` or
``PADDLEOCR_HOME``) or, by default, the PyPI package ``unstructured-paddleocr``.

The PyPI ``paddleocr`` package is refused: it has no ``tools/train.py``.
Nothing here imports Paddle; finding the engine is cheap.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from rectrain.errors import EnvironmentProblem

DEFAULT_ENGINE_PACKAGE = "unstructured-paddleocr"
DEFAULT_ENGINE_VERSION = "2.10.0"
INSTALL_FIX = (f'pip install "{DEFAULT_ENGINE_PACKAGE}=={DEFAULT_ENGINE_VERSION}" "paddlepaddle>=3.0" '
               "(or run ./setup.sh), or point PADDLEOCR_HOME / --paddleocr-dir at an official "
               "PaddleOCR checkout.")


@dataclass(frozen=True)
class Engine:
    """Where the engine is and which it is."""

    root: Path  # the folder that holds tools/train.py and ppocr/
    kind: str  # "unstructured-paddleocr" or "checkout"
    version: str
    python: str = sys.executable

    def script(self, tool: str) -> Path:
        """Path of ``tools/<tool>.py`` (train, eval, export_model, infer_rec)."""
        return self.root / "tools" / f"{tool}.py"

    @property
    def name(self) -> str:
        return f"{self.kind} {self.version}"

    def as_dict(self) -> dict:
        return {"kind": self.kind, "version": self.version, "root": str(self.root),
                "python": self.python}


def _check_root(root: Path, origin: str) -> None:
    missing = [p for p in ("tools/train.py", "tools/export_model.py", "tools/program.py", "ppocr")
               if not (root / p).exists()]
    if missing:
        hint = ""
        if (root / "paddleocr.py").exists() or root.name == "paddleocr":
            hint = " The PyPI 'paddleocr' package is inference-only and is not an engine."
        raise EnvironmentProblem(
            f"{origin} {root} is not a PaddleOCR training engine: missing {', '.join(missing)}.{hint}",
            INSTALL_FIX)


def _checkout_version(root: Path) -> str:
    for candidate in ("paddleocr.py", "paddleocr/_version.py", "setup.py", "pyproject.toml"):
        path = root / candidate
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            match = re.search(r"""(?:VERSION|__version__|version)\s*=\s*["']([0-9][^"']*)["']""", text)
            if match:
                return match.group(1)
    try:
        out = subprocess.run(["git", "-C", str(root), "describe", "--tags", "--always"],
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def find_engine(paddleocr_dir: Optional[str] = None) -> Engine:
    """Return the engine to use: ``paddleocr_dir``, else ``$PADDLEOCR_HOME``, else the
    installed ``unstructured-paddleocr`` package. Raises :class:`EnvironmentProblem`."""
    explicit = paddleocr_dir or os.environ.get("PADDLEOCR_HOME")
    if explicit:
        origin = "--paddleocr-dir" if paddleocr_dir else "PADDLEOCR_HOME"
        root = Path(explicit).expanduser().resolve()
        if not root.is_dir():
            raise EnvironmentProblem(f"{origin} {root} does not exist.", INSTALL_FIX)
        _check_root(root, origin)
        return Engine(root=root, kind="checkout", version=_checkout_version(root))
    spec = importlib.util.find_spec("unstructured_paddleocr")
    if spec is None or not spec.submodule_search_locations:
        raise EnvironmentProblem("No PaddleOCR training engine found.", INSTALL_FIX)
    root = Path(list(spec.submodule_search_locations)[0]).resolve()
    _check_root(root, "the installed unstructured-paddleocr package at")
    try:
        version = importlib.metadata.version(DEFAULT_ENGINE_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return Engine(root=root, kind=DEFAULT_ENGINE_PACKAGE, version=version)
