"""The code stays Python 3.9 syntax, lint-clean (ruff) and type-clean (mypy), as configured in
pyproject.toml."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "src" / "rectrain").rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_39_syntax(path: Path) -> None:
    ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 9))


def _tool(name: str) -> str:
    exe = Path(sys.executable).parent / name
    if not exe.exists():
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")
    return str(exe)


def test_ruff_is_clean() -> None:
    proc = subprocess.run([_tool("ruff"), "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_mypy_is_clean() -> None:
    proc = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


MAX_FUNCTION_LINES = 120  # readable on one screen (most are well under 60)


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list:
    """``(name, first line, lines)`` of every function or method longer than ``limit`` lines
    (decorators and docstring included)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            length = (node.end_lineno or node.lineno) - first + 1
            if length > limit:
                out.append((node.name, first, length))
    return out


def test_the_length_check_counts_lines() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    assert long_functions(f"def f():\n{body}\n") == [("f", 1, MAX_FUNCTION_LINES + 1)]
    method = "\n".join(f"        y{i} = {i}" for i in range(20))
    assert long_functions(f"class A:\n    def m(self):\n{method}\n", limit=10) == [("m", 2, 21)]
    assert long_functions("def g():\n    return 1\n") == []


def test_no_function_is_longer_than_a_screen() -> None:
    found = {str(p.relative_to(ROOT)): long_functions(p.read_text(encoding="utf-8")) for p in SOURCES}
    assert {k: v for k, v in found.items() if v} == {}
