"""Every relative link and image in the project's Markdown (and the notebook's Markdown cells)
points at a file that exists, and every ``#anchor`` at a heading of the target document."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Iterator, List, Tuple
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".git", "venv", ".venv", "node_modules", "runs", "build", "dist", ".pytest_cache",
             ".ruff_cache", ".mypy_cache", "_work", "rectrain-demo"}
LINK = re.compile(r"!?\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def markdown_files() -> List[Path]:
    files = []
    for path in sorted(ROOT.rglob("*.md")):
        rel = path.relative_to(ROOT)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts[:-1]):
            continue
        files.append(path)
    return files


def strip_code(text: str, inline: bool = True) -> str:
    """Drop fenced code blocks (and inline code spans): links there are examples, not links."""
    out, in_fence = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            out.append("")
            continue
        out.append("" if in_fence else re.sub(r"`[^`]*`", "", line) if inline else line)
    return "\n".join(out)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    heading = re.sub(r"`([^`]*)`", r"\1", heading.strip())
    heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    kept = [c for c in heading.lower()
            if c in " -_" or unicodedata.category(c)[0] in "LNM"]
    return "".join(kept).replace(" ", "-")


def anchors(path: Path) -> set:
    seen: dict = {}
    result = set()
    for line in strip_code(path.read_text(encoding="utf-8"), inline=False).splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = slug(match.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        result.add(base if n == 0 else f"{base}-{n}")
    for name in re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", path.read_text(encoding="utf-8")):
        result.add(name)
    return result


def links_in(path: Path, text: str) -> Iterator[Tuple[int, str]]:
    for lineno, line in enumerate(strip_code(text).splitlines(), 1):
        for match in LINK.finditer(line):
            yield lineno, match.group("target")


def check_target(source: Path, target: str) -> str:
    """'' when the link resolves, else what is wrong."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:, s3: ...
        return ""
    path_part, _, anchor = target.partition("#")
    dest = source if not path_part else (source.parent / unquote(path_part)).resolve()
    if path_part:
        try:
            dest.relative_to(ROOT)
        except ValueError:
            return f"{target}: points outside the repository"
        if not dest.exists():
            return f"{target}: {dest.relative_to(ROOT)} does not exist"
    if anchor and dest.is_file() and dest.suffix == ".md" and unquote(anchor) not in anchors(dest):
        return f"{target}: no heading with anchor #{anchor} in {dest.relative_to(ROOT)}"
    return ""


def test_slug_matches_github() -> None:
    assert slug("A. From images and labels") == "a-from-images-and-labels"
    assert slug("Packed datasets (tar shards)") == "packed-datasets-tar-shards"
    assert slug("Dataset manifest (`manifest.jsonl`)") == "dataset-manifest-manifestjsonl"
    assert slug("C. From nothing: synthetic words") == "c-from-nothing-synthetic-words"


def test_link_checker_catches_broken_links(tmp_path: Path) -> None:
    doc = ROOT / "docs" / "data-format.md"
    assert check_target(doc, "architecture.md") == ""
    assert check_target(doc, "#dictionary") == ""
    assert "does not exist" in check_target(doc, "no-such-page.md")
    assert "no heading" in check_target(doc, "architecture.md#no-such-section")
    assert check_target(doc, "https://example.com/x.md") == ""


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_markdown_links_resolve(path: Path) -> None:
    problems = [f"{path.relative_to(ROOT)}:{line}: {msg}"
                for line, target in links_in(path, path.read_text(encoding="utf-8"))
                for msg in [check_target(path, target)] if msg]
    assert not problems, "\n".join(problems)


def test_notebook_markdown_links_resolve() -> None:
    notebook = ROOT / "notebook.ipynb"
    if not notebook.exists():
        pytest.skip("no notebook.ipynb")
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    problems = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for _, target in links_in(notebook, text):
            msg = check_target(notebook, target)
            if msg:
                problems.append(f"notebook.ipynb cell {i}: {msg}")
    assert not problems, "\n".join(problems)


def test_core_docs_exist() -> None:
    for rel in ["docs/data-format.md", "docs/architecture.md", "docs/architecture.png",
                "data_preparation/README.md", "data_preparation/QUICKSTART.md"]:
        assert (ROOT / rel).is_file(), rel
    assert len(markdown_files()) >= 5
