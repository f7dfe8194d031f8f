"""The package's layers (pyproject.toml ``[tool.importlinter]``, docs/architecture.md) are kept:
no upward imports (the in-job program, ``rectrain.container``, is an entry point: no library
module imports it), no cycles between siblings at any depth. And the check is real: an upward
import, a cycle between two packages of one layer, a cycle inside a package, or an import of
the in-job program planted in a copy of the package breaks it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter", reason="import-linter (dev extra) needs Python >= 3.10")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "rectrain"
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def lint(src: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` with the project's contracts on the ``rectrain`` package under ``src``."""
    env = dict(os.environ, PYTHONPATH=str(src), COLUMNS="200", NO_COLOR="1")
    argv = [sys.executable, "-c", LINT, "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")]
    return subprocess.run(argv, cwd=src, env=env, capture_output=True, text=True, timeout=300)


def test_the_package_keeps_its_layers() -> None:
    result = lint(PACKAGE.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout and "KEPT" in result.stdout


@pytest.mark.parametrize(("module", "planted", "expected"), [
    # the bottom layer imports the top one
    ("errors.py", "import rectrain.cli", "rectrain.errors -> rectrain.cli"),
    # a foundation imports a feature
    ("storage/s3.py", "import rectrain.training.runner", "rectrain.storage.s3 -> rectrain.training.runner"),
    # two packages of one layer import each other (runs imports monitor): a cycle
    ("monitor/follow.py", "import rectrain.runs.compare",
     "No cycles are allowed in rectrain.\n"),
    # a library module imports the in-job program (the container's entry point)
    ("emulator/run_local.py", "import rectrain.container.entrypoint",
     "rectrain.emulator.run_local -> rectrain.container.entrypoint"),
    # a cycle inside a package
    ("data/labels.py", "import rectrain.data.validate", ".labels -> .validate"),
])
def test_a_planted_violation_breaks_the_contract(tmp_path: Path, module: str, planted: str,
                                                 expected: str) -> None:
    copy = tmp_path / "src" / "rectrain"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    text = target.read_text(encoding="utf-8")
    head, sep, rest = text.partition("from __future__ import annotations\n")
    assert sep, f"{module}: no `from __future__` line to plant after"
    target.write_text(f"{head}{sep}{planted}  # planted\n{rest}", encoding="utf-8")
    result = lint(copy.parent)
    assert result.returncode != 0 and "BROKEN" in result.stdout, result.stdout + result.stderr
    assert expected in result.stdout, result.stdout
