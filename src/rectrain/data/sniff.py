"""Recognise the wrong file before reading it line by line: a label file or dictionary that
is really UTF-16/32, binary (an image, an archive, weights), a detection label file, a YAML or
JSON config, or empty. Each case is a :class:`~rectrain.errors.DataError` naming the file and
what it is, and the fix (the command that reads that kind of file, or how to re-save it)."""

from __future__ import annotations

import json
import os
import re
from typing import Optional, Union

from rectrain.errors import DataError
from rectrain.fsutil import refuse_special

PathLike = Union[str, "os.PathLike[str]"]

HEAD_BYTES = 64 * 1024

_BOMS = (
    (b"\x00\x00\xfe\xff", "UTF-32 (big-endian)", "UTF-32BE"),
    (b"\xff\xfe\x00\x00", "UTF-32 (little-endian)", "UTF-32LE"),
    (b"\xfe\xff", "UTF-16 (big-endian)", "UTF-16BE"),
    (b"\xff\xfe", "UTF-16 (little-endian)", "UTF-16LE"),
)

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"BM", None),  # too short to be sure: only with NUL bytes
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"RIFF", "a RIFF file (WebP image?)"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a zip archive (xlsx/docx?)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x80\x02", "a Python pickle (.pdparams/.states weights?)"),
    (b"\x80\x03", "a Python pickle (.pdparams/.states weights?)"),
    (b"\x80\x04", "a Python pickle (.pdparams/.states weights?)"),
    (b"\x80\x05", "a Python pickle (.pdparams/.states weights?)"),
)


def _head(path: PathLike) -> bytes:
    refuse_special(path)
    with open(path, "rb") as fh:
        return fh.read(HEAD_BYTES)


def _utf16_without_bom(head: bytes) -> Optional[str]:
    """ASCII-heavy UTF-16 without a BOM: every other byte is NUL."""
    if len(head) < 8:
        return None
    even = head[0::2].count(0)
    odd = head[1::2].count(0)
    half = len(head) // 2
    if odd > 0.3 * half and even < 0.05 * half:
        return "UTF-16LE"
    if even > 0.3 * half and odd < 0.05 * half:
        return "UTF-16BE"
    return None


def encoding_problem(head: bytes) -> Optional[str]:
    """A sentence saying what the bytes are when they cannot be a UTF-8 text file, else None."""
    for bom, name, codec in _BOMS:
        if head.startswith(bom):
            return (f"is encoded as {name}, not UTF-8 (it starts with the {name} byte-order mark)|"
                    f"re-save it as UTF-8 without BOM, e.g. `iconv -f {codec} -t UTF-8 IN > OUT` "
                    "(Notepad: Save As, Encoding UTF-8).")
    guessed = _utf16_without_bom(head)
    if guessed:
        return (f"looks encoded as {guessed} (every other byte is NUL), not UTF-8|"
                f"re-save it as UTF-8, e.g. `iconv -f {guessed} -t UTF-8 IN > OUT`.")
    for magic, what in _MAGIC:
        if what and head.startswith(magic):
            return f"is {what}, not a text file|pass the text file it belongs with instead."
    if b"\x00" in head:
        return ("is a binary file (it has NUL bytes), not a text file|"
                "pass the UTF-8 text file instead.")
    if _thai_legacy(head):
        return ("is encoded as TIS-620 (Thai; Windows calls it cp874 / windows-874), not UTF-8: "
                "the engine would drop or misread every Thai character|"
                "re-save it as UTF-8, e.g. `iconv -f TIS-620 -t UTF-8 IN > OUT`.")
    return None


def _thai_legacy(head: bytes) -> bool:
    """Not UTF-8 anywhere, and every high byte a TIS-620 Thai letter: a Thai file in TIS-620."""
    cut = head[:len(head) - 4] if len(head) >= 4096 else head  # a character split at the end
    try:
        cut.decode("utf-8")
        return False
    except UnicodeDecodeError:
        pass
    high = [b for b in cut if b >= 0x80]
    return bool(high) and all(0xA1 <= b <= 0xFB for b in high) and not any(
        0xDB <= b <= 0xDE or b == 0xFC for b in high) and "\ufffd" not in cut.decode("tis-620", "replace")


def _first_text_lines(head: bytes, n: int = 5) -> list:
    text = head.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    return [ln for ln in text.splitlines() if ln.strip()][:n]


def _is_detection_line(line: str) -> bool:
    """PPOCRLabel / PaddleOCR detection labels: ``path<TAB>[{"transcription": ..., "points": ...}]``."""
    parts = line.split("\t")
    if len(parts) < 2 or not parts[1].lstrip().startswith("[{"):
        return False
    try:
        items = json.loads(parts[1])
    except ValueError:
        return '"points"' in parts[1] and '"transcription"' in parts[1]
    return isinstance(items, list) and bool(items) and all(
        isinstance(i, dict) and "points" in i for i in items)


_YAML_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*:(\s|$)")
_YAML_NESTED = re.compile(r"^\s+(- )?[A-Za-z_][A-Za-z0-9_.-]*:(\s|$)")


def _looks_like_config(lines: list) -> Optional[str]:
    """"JSON" or "YAML" when the first lines are a mapping of named keys, else None. A single
    character per line (a dictionary holding ``{`` or ``:``) never matches."""
    if not lines:
        return None
    first = lines[0].strip()
    second = lines[1].strip() if len(lines) > 1 else ""
    if first.startswith(('{"', '["', "[{")) or (first in ("{", "[") and second.startswith('"')):
        return "JSON"
    if first.startswith(("---", "%YAML")):
        return "YAML"
    keys = sum(1 for ln in lines if _YAML_KEY.match(ln))
    if keys >= 2 or (keys == 1 and len(lines) == 1):
        return "YAML"
    # "Global:" then indented "use_gpu: false": a section of a config
    if keys == 1 and _YAML_KEY.match(lines[0]) and any(_YAML_NESTED.match(ln) for ln in lines[1:]):
        return "YAML"
    return None


def check_label_file(path: PathLike, *, what: str = "label file") -> None:
    """Raise DataError when ``path`` cannot be a recognition label file (see module doc)."""
    name = str(path)
    head = _head(path)
    body = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    if not body.strip():
        raise DataError(f"the {what} is empty: no samples.",
                        "pass the label file with your `image_path<TAB>label` lines (one per image).",
                        path=name)
    problem = encoding_problem(head)
    if problem:
        message, fix = problem.split("|", 1)
        raise DataError(f"the {what} {message}.", fix, path=name)
    lines = _first_text_lines(head)
    if lines and _is_detection_line(lines[0]):
        raise DataError(
            f"this is a detection label file (PPOCRLabel: image path, TAB, a JSON list of boxes with "
            f"\"points\" and \"transcription\"), not a recognition {what}.",
            f"crop the words first: `rectrain data convert {name} --from ppocrlabel -o crops/`, "
            "then use crops/labels.txt.", path=name, line=1)
    kind = _looks_like_config(lines)
    if kind and not any("\t" in ln for ln in lines):
        raise DataError(f"this looks like a {kind} file (a config?), not a {what} of "
                        "`image_path<TAB>label` lines.", f"pass the {what} itself.", path=name)


def refuse_bom(path: PathLike, *, what: str = "label file") -> None:
    """The engine reads a UTF-8 byte-order mark as part of line 1's image path (and cannot open
    that image), or of a dictionary's first entry (never recognised): refuse it where a config
    will hand the file to the engine."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if head.startswith(b"\xef\xbb\xbf") and what == "dictionary":
        first = head[3:].decode("utf-8", "replace").splitlines()[:1]
        entry = first[0] if first else ""
        raise DataError(
            f"the dictionary starts with a UTF-8 byte-order mark (BOM): the engine reads it as part "
            f"of the first entry (U+FEFF + {entry!r}), so {entry!r} is never recognised.",
            f"save it as UTF-8 without BOM (`sed -i '1s/^\\xEF\\xBB\\xBF//' {path}`).",
            path=str(path), line=1)
    if head.startswith(b"\xef\xbb\xbf"):
        raise DataError(
            f"the {what} starts with a UTF-8 byte-order mark (BOM): the engine reads it as part "
            "of line 1's image path and cannot open that image.",
            f"save it as UTF-8 without BOM: `rectrain data validate {path} --write-clean "
            f"{path}.clean.txt` writes a clean copy (or `sed -i '1s/^\\xEF\\xBB\\xBF//' {path}`).",
            path=str(path), line=1)


def check_dictionary_file(path: PathLike) -> None:
    """Raise DataError when ``path`` cannot be a character dictionary (UTF-16, binary, YAML,
    JSON, a label file)."""
    name = str(path)
    head = _head(path)
    problem = encoding_problem(head)
    if problem:
        message, fix = problem.split("|", 1)
        raise DataError(f"the dictionary {message}.", fix, path=name)
    lines = _first_text_lines(head, 20)
    kind = _looks_like_config(lines)
    if kind:
        raise DataError(f"this looks like a {kind} file (a training config?), not a dictionary "
                        "(one character per line).",
                        "pass the dictionary file named by Global.character_dict_path (e.g. "
                        "ppocrv5_th_dict.txt), or build one: `rectrain data dict LABELS -o dict.txt`.",
                        path=name)
    if lines and all("\t" in ln for ln in lines[:5]):
        raise DataError("this looks like a label file (`image_path<TAB>label` lines), not a "
                        "dictionary (one character per line).",
                        "build the dictionary from it: `rectrain data dict LABELS -o dict.txt`.", path=name)
