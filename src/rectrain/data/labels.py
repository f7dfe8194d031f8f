"""Streaming parser for recognition label files (``image_path<TAB>label``, one per line).

Lines are split the way the engine's ``SimpleDataSet`` does (``readlines()`` on ``\\n``, UTF-8,
``.strip("\\n").split("\\t")``, path = field 1, label = field 2), but every deviation is kept
as an issue code instead of being silently dropped or skipped.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Tuple, Union

PathLike = Union[str, "os.PathLike[str]"]

BOM = b"\xef\xbb\xbf"


@dataclass
class LabelLine:
    """One parsed line. ``issues`` holds (code, detail) pairs found by parsing alone."""

    line: int
    raw: bytes
    path: Optional[str] = None
    label: Optional[str] = None
    issues: List[Tuple[str, str]] = field(default_factory=list)
    extra_fields: int = 0

    @property
    def parsed(self) -> bool:
        return self.path is not None and self.label is not None

    def image_paths(self) -> List[str]:
        """The image path, or the list form the engine also accepts (``["a.png", "b.png"]``)."""
        if self.path is None:
            return []
        if self.path.startswith("["):
            try:
                items = json.loads(self.path)
            except ValueError:
                return [self.path]
            if isinstance(items, list) and items and all(isinstance(i, str) for i in items):
                return items
        return [self.path]


def parse_line(raw: bytes, line_no: int) -> LabelLine:
    """Parse one raw line (with its line end)."""
    rec = LabelLine(line=line_no, raw=raw)
    body = raw[:-1] if raw.endswith(b"\n") else raw
    if line_no == 1 and body.startswith(BOM):
        rec.issues.append(("bom", ""))
        body = body[len(BOM):]
    if body.endswith(b"\r"):
        rec.issues.append(("crlf", ""))
        body = body[:-1]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        rec.issues.append(("not-utf8", f"byte 0x{body[exc.start]:02X} at column {exc.start + 1}"))
        return rec
    if text.strip() == "":
        rec.issues.append(("blank-line", ""))
        return rec
    parts = text.split("\t")
    if len(parts) < 2:
        rec.issues.append(("no-tab", text))
        return rec
    rec.path = parts[0]
    rec.label = parts[1]
    if len(parts) > 2:
        rec.extra_fields = len(parts) - 2
        rec.issues.append(("extra-tab", text))
    return rec


def iter_label_file(path: PathLike) -> Iterator[LabelLine]:
    """Yield every line of ``path`` parsed, streaming (constant memory)."""
    with open(path, "rb") as fh:
        for no, raw in enumerate(fh, start=1):
            yield parse_line(raw, no)
