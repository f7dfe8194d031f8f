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

from rectrain.data.text import invisible_chars, invisible_in_labels
from rectrain.fsutil import refuse_special
from rectrain.logs import get_logger

PathLike = Union[str, "os.PathLike[str]"]
log = get_logger(__name__)

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


def iter_labels_reporting(path: PathLike) -> Iterator[LabelLine]:
    """:func:`iter_label_file`, then one warning per label holding invisible characters
    (zero-width, word joiner, BOM, bidi controls: :mod:`rectrain.data.text`), naming the file,
    the line and the code points: what every command that reads labels reports."""
    hidden = []
    for rec in iter_label_file(path):
        if rec.label and invisible_chars(rec.label):
            hidden.append((rec.line, rec.label))
        yield rec
    for message in invisible_in_labels(str(path), hidden):
        log.warning("%s", message)


def iter_label_file(path: PathLike) -> Iterator[LabelLine]:
    """Yield every line of ``path`` parsed, streaming (constant memory)."""
    refuse_special(path, what="label file")
    with open(path, "rb") as fh:
        for no, raw in enumerate(fh, start=1):
            yield parse_line(raw, no)
