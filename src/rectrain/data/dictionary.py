"""Character dictionaries, read exactly as the PaddleOCR 2.10 engine reads them.

The engine (``ppocr/data/imaug/label_ops.py`` ``BaseRecLabelEncode`` and
``ppocr/postprocess/rec_postprocess.py`` ``BaseRecLabelDecode``) opens the file in binary,
splits it with ``readlines()`` (on ``\\n`` only), decodes each line as UTF-8 and strips it with
``.strip("\\n").strip("\\r\\n")``: a trailing CR is removed, every other character (spaces, tabs,
a BOM) stays part of the class. Every line is one class, empty lines and lines holding several
code points included. ``use_space_char`` appends ``" "``. CTC then puts ``"blank"`` in front
(class 0). A character listed twice maps to its *last* line when labels are encoded.

Labels are encoded code point by code point: a label character that is not exactly one line of
the dictionary is skipped without a word, so a class holding two code points can never be
trained. We report such quirks and never repair them: pretrained weights depend on the line
count and order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Union

from rectrain.data.findings import WARNING, Finding, codepoints, describe_char, show_value
from rectrain.data.labels import iter_labels_reporting
from rectrain.data.sniff import check_dictionary_file, check_label_file
from rectrain.data.text import invisible_chars, is_invisible, name_chars
from rectrain.errors import DataError
from rectrain.fsutil import refuse_special
from rectrain.logs import get_logger
from rectrain.outputs import claim_output_file, record_output, write_text

PathLike = Union[str, "os.PathLike[str]"]

CTC_BLANK = "blank"

log = get_logger(__name__)


@dataclass
class Dictionary:
    """A dictionary as the engine sees it.

    ``chars`` is the list of classes in file order (one per line, exactly as the engine reads
    them, plus ``" "`` when ``use_space_char``), without CTC's ``blank``.
    """

    path: str
    chars: List[str]
    findings: List[Finding] = field(default_factory=list)
    use_space_char: bool = False
    lines: int = 0

    @property
    def index(self) -> Dict[str, int]:
        """Class index per entry as the CTC encoder uses it (blank is 0; the last duplicate wins)."""
        out: Dict[str, int] = {}
        for i, ch in enumerate(self.chars):
            out[ch] = i + 1
        return out

    @property
    def encodable(self) -> frozenset:
        """Single code points a label may contain; anything else is dropped by the engine."""
        return frozenset(c for c in self.chars if len(c) == 1)

    @property
    def num_classes_ctc(self) -> int:
        """Output size of a CTC head: the entries plus blank."""
        return len(self.chars) + 1

    @property
    def has_space(self) -> bool:
        return " " in self.chars

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, ch: object) -> bool:
        return ch in self.encodable


def _read_raw_lines(path: Path) -> List[bytes]:
    refuse_special(path, what="dictionary")
    try:
        with open(path, "rb") as fh:
            return fh.readlines()
    except FileNotFoundError:
        raise DataError("dictionary file not found.", "pass the path of an existing dictionary "
                        "(one character per line).", path=str(path)) from None
    except IsADirectoryError:
        raise DataError("the dictionary path is a folder.", "pass the dictionary file itself.",
                        path=str(path)) from None
    except OSError as exc:
        raise DataError(f"cannot read the dictionary: {exc.strerror}.",
                        "check the path and its permissions.", path=str(path)) from None


def read_dictionary(path: PathLike, use_space_char: bool = False) -> Dictionary:
    """Read ``path`` the way the engine does and collect its quirks in ``.findings``.

    Raises DataError when the engine itself could not read the file (missing, not UTF-8).
    """
    p = Path(path)
    name = str(path)
    raw_lines = _read_raw_lines(p)
    if raw_lines:
        check_dictionary_file(p)
    if not raw_lines:
        raise DataError("the dictionary is empty.", "pass the dictionary the model uses (one character "
                        "per line), or build one with `rectrain data dict LABELS -o dict.txt`.", path=name)
    chars: List[str] = []
    findings: List[Finding] = []
    first_seen: Dict[str, int] = {}
    for no, raw in enumerate(raw_lines, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(
                f"line {no} is not valid UTF-8 (byte 0x{raw[exc.start]:02X} at column {exc.start + 1}); "
                "the engine would crash reading it.",
                "re-save the dictionary as UTF-8 (e.g. `iconv -f TIS-620 -t UTF-8`).",
                path=name, line=no) from None
        if raw.endswith(b"\r\n"):
            findings.append(Finding(
                "dict-crlf", name, no, "line ends with CRLF (Windows line end); the engine strips "
                "the CR, other tools may keep it as part of the character.",
                "convert the file to LF line ends (`dos2unix`) if nothing depends on its bytes.",
                WARNING))
        entry = text.strip("\n").strip("\r\n")
        hidden = invisible_chars(entry[1:] if no == 1 and entry.startswith("\ufeff") else entry)
        if hidden:
            raise DataError(f"line {no} holds {name_chars(hidden)}: an invisible (zero-width or format) "
                            "character would become a class the model learns to output, for nothing "
                            "an image shows.", f"delete line {no} (or that character) from the "
                            "dictionary, and the character from the labels.", path=name, line=no)
        chars.append(entry)
        if no == 1 and entry.startswith("\ufeff"):
            findings.append(Finding(
                "dict-whitespace", name, no, "line 1 starts with a byte-order mark (U+FEFF): it "
                "becomes part of the first class, which then never matches a label character.",
                "save the dictionary as UTF-8 without BOM.", WARNING, show_value(entry)))
            body = entry[1:]
        else:
            body = entry
        if entry == "":
            findings.append(Finding(
                "dict-empty-line", name, no, "empty line: the engine makes it a class of its own "
                "that no label can produce; harmless while it stays, but deleting it shifts every "
                "later class by one.",
                "keep it if pretrained weights were trained with this file (the head size follows "
                "the line count); otherwise delete the line.", WARNING))
            continue
        stripped = body.strip()
        if body != stripped and not (len(body) == 1 and body == " "):
            findings.append(Finding(
                "dict-whitespace", name, no,
                f"entry {show_value(entry)} has whitespace around it, which is part of the class: "
                "labels can never match it.",
                "remove the whitespace, unless pretrained weights were trained with this file.",
                WARNING, show_value(entry)))
        if len(stripped) > 1:
            findings.append(Finding(
                "dict-multi-char", name, no,
                f"entry {show_value(entry)} holds {len(stripped)} code points; labels are encoded "
                "one code point at a time, so this class can never be trained or predicted.",
                "put one code point per line (e.g. `rectrain data dict LABELS -o dict.txt`); keep "
                "the line only if pretrained weights were trained with this file.",
                WARNING, show_value(entry)))
        if entry in first_seen:
            findings.append(Finding(
                "dict-duplicate", name, no,
                f"{_describe_entry(entry)} is already on line {first_seen[entry]}; the encoder "
                "uses the last one, so the first becomes a class that is never trained.",
                "keep the file as is for pretrained weights; otherwise delete the repeat.",
                WARNING, show_value(entry)))
        else:
            first_seen[entry] = no
    singles = {c for c in chars if len(c) == 1}
    for f in findings:
        if f.code == "dict-multi-char":
            entry = chars[(f.line or 1) - 1].strip()
            orphans = [c for c in dict.fromkeys(entry) if c not in singles]
            if not orphans:
                f.message += " Its characters are also listed alone, so no label loses them."
            else:
                f.message += (" " + ", ".join(describe_char(c) for c in orphans) + " appear(s) on no line of "
                              "their own: the engine drops them from every label.")
                f.fix = ("to train it, append it on a line of its own at the end (`rectrain data dict "
                         "LABELS --base DICT -o NEW` does; the head is re-initialized for the new size); "
                         "keep the line itself for the pretrained weights.")
    if use_space_char:
        if " " in first_seen:
            findings.append(Finding(
                "dict-duplicate", name, first_seen[" "],
                "the dictionary already has a space on this line and use_space_char adds another.",
                "set use_space_char: False, or remove the space line.", WARNING, show_value(" ")))
        chars.append(" ")
    return Dictionary(path=name, chars=chars, findings=findings, use_space_char=use_space_char,
                      lines=len(raw_lines))


def _describe_entry(entry: str) -> str:
    return describe_char(entry) if len(entry) == 1 else f"{entry!r} ({codepoints(entry)})"


def check_dictionary(path: PathLike, use_space_char: bool = False) -> List[Finding]:
    """The quirks of a dictionary file (never repaired)."""
    return read_dictionary(path, use_space_char=use_space_char).findings


@dataclass
class DictBuild:
    chars: List[str]
    added: List[str]
    base_count: int
    has_space: bool
    path: Optional[str] = None


def build_dictionary(labels: Iterable[PathLike], base: Optional[PathLike] = None,
                     out: Optional[PathLike] = None) -> DictBuild:
    """A dictionary covering every code point of the labels, one per line.

    Without ``base``: code-point order (stable whatever the file order). With ``base``: the base
    lines exactly as they are (quirks included, the weights depend on them), then the new
    characters in code-point order. Spaces are not added: set ``use_space_char`` instead.
    Writes ``out`` (atomically) when given.
    """
    labels = [str(lf) for lf in labels]
    if out is not None:
        claim_output_file(out, command="data dict", inputs=[("label file", lf) for lf in labels]
                          + [("base dictionary", base)])
    for lf in labels:
        check_label_file(lf)
    seen: set = set()
    has_space = False
    for lf in labels:
        for rec in iter_labels_reporting(lf):
            if rec.label is not None:
                seen.update(rec.label)
    seen = {c for c in seen if not is_invisible(c)}  # reported above, never made a class
    if " " in seen:
        has_space = True
    seen -= {" ", "\t", "\r", "\n", "\ufeff"}
    base_chars: List[str] = []
    if base is not None:
        base_chars = [c for c in read_dictionary(base).chars]
    known = set(base_chars)
    added = sorted((c for c in seen if c not in known), key=ord)
    chars = base_chars + added
    result = DictBuild(chars=chars, added=added, base_count=len(base_chars), has_space=has_space)
    if out is not None:
        write_dictionary(chars, out)
        record_output(out, command="data dict")
        result.path = str(out)
    return result


def write_dictionary(chars: List[str], out: PathLike) -> None:
    """One entry per line, LF, UTF-8 without BOM, a final newline."""
    write_text(out, "".join(c + "\n" for c in chars))
