"""Label text normalization: Unicode NFC plus the Thai spellings NFC does not fix.

* SARA AM (U+0E33) typed as NIKHAHIT + SARA AA (U+0E4D U+0E32): looks identical, is a
  different code sequence, and NFC does *not* compose it (U+0E33 only has a compatibility
  decomposition). A tone mark may sit between them (``น ํ ้ า`` for ``น้ำ``).
* A tone mark (U+0E48-U+0E4B) typed before an above/below vowel (U+0E31, U+0E34-U+0E3A): the
  standard order is vowel then tone mark; NFC does not reorder them (the vowels have combining
  class 0 or 103, the tone marks 107, and class-0 marks block reordering).

Both give the model two spellings of the same picture.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Iterable, List

_SARA_AM_SPLIT = re.compile("\u0e4d([\u0e48-\u0e4b]?)\u0e32")
_TONE_BEFORE_VOWEL = re.compile("([\u0e48-\u0e4b])([\u0e31\u0e34-\u0e3a])")


def thai_issues(text: str) -> List[str]:
    """Short descriptions of the non-standard Thai spellings in ``text``."""
    out: List[str] = []
    if _SARA_AM_SPLIT.search(text):
        out.append("SARA AM written as NIKHAHIT + SARA AA (U+0E4D U+0E32), should be U+0E33")
    if _TONE_BEFORE_VOWEL.search(text):
        out.append("tone mark before an above/below vowel (standard order: vowel, then tone mark)")
    return out


def is_normalized(text: str) -> bool:
    return unicodedata.is_normalized("NFC", text) and not thai_issues(text)


def normalize_label(text: str) -> str:
    """NFC, SARA AM composed, Thai vowel/tone order fixed. Never NFKC (it would split U+0E33)."""
    out = unicodedata.normalize("NFC", text)
    out = _SARA_AM_SPLIT.sub(lambda m: m.group(1) + "\u0e33", out)
    prev = None
    while prev != out:
        prev = out
        out = _TONE_BEFORE_VOWEL.sub(r"\2\1", out)
    return out


@lru_cache(maxsize=1)
def _composing_marks() -> frozenset:
    """Combining marks that take part in a canonical composition (U+0301 in é = e + U+0301)."""
    marks = set()
    for cp in range(0x30000):
        dec = unicodedata.decomposition(chr(cp))
        if dec and not dec.startswith("<"):
            for part in dec.split()[1:]:
                marks.add(chr(int(part, 16)))
    return frozenset(m for m in marks if unicodedata.combining(m))


def unicode_form(chars: Iterable[str]) -> str:
    """The normalization form a set of characters (a dictionary) is in: "NFC" (precomposed
    characters such as é), "NFD" (base letters and composing marks, e + U+0301), "mixed", or
    "either" (nothing that NFC and NFD write differently, e.g. Thai or ASCII)."""
    marks = _composing_marks()
    composed = decomposed = False
    for c in chars:
        if len(c) == 1 and c in marks:
            decomposed = True
        elif unicodedata.normalize("NFD", c) != c:
            composed = True
    if composed and decomposed:
        return "mixed"
    return "NFC" if composed else "NFD" if decomposed else "either"


def label_form(text: str) -> str:
    """"NFC", "NFD" or "neither" (e.g. a Thai spelling NFC does not fix, or a mix)."""
    if unicodedata.is_normalized("NFC", text):
        return "NFC"
    return "NFD" if unicodedata.is_normalized("NFD", text) else "neither"


# -- invisible and format characters ------------------------------------------------------------
# Zero-width characters, the word joiner, a BOM inside text, bidi controls, the soft hyphen and
# the line/paragraph separators: nothing a word image shows, yet each is a class the model must
# learn to output (U+200B is common in Thai text copied from the web: it marks word breaks).
_LINE_SEPARATORS = {"\u2028", "\u2029"}

INVISIBLE_FIX = ("delete the invisible character(s) (a text editor that shows them, or "
                 "`sed -i 's/\\xe2\\x80\\x8b//g' FILE` for U+200B); an image never shows them")


def is_invisible(ch: str) -> bool:
    """A format (Cf) character or a line/paragraph separator: zero-width, word joiner, BOM,
    bidi controls, soft hyphen, U+2028/U+2029."""
    return unicodedata.category(ch) == "Cf" or ch in _LINE_SEPARATORS


@lru_cache(maxsize=1)
def _invisible_re() -> re.Pattern[str]:
    chars = [chr(cp) for cp in range(0x110000) if cp < 0xD800 or cp > 0xDFFF if is_invisible(chr(cp))]
    return re.compile("[" + "".join(re.escape(c) for c in chars) + "]")


def invisible_chars(text: str) -> List[str]:
    """The invisible characters of ``text`` (see :func:`is_invisible`), first occurrence order."""
    return list(dict.fromkeys(_invisible_re().findall(text)))


def name_chars(chars: Iterable[str]) -> str:
    """``U+200B ZERO WIDTH SPACE, U+2060 WORD JOINER``."""
    return ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, 'unnamed')}" for c in chars)


def invisible_in_labels(path: str, lines: Iterable[tuple]) -> List[str]:
    """One message per label of ``lines`` (``(line number, label)``) that holds invisible
    characters: ``labels.txt:3: the label holds U+200B ZERO WIDTH SPACE (invisible) ...``."""
    out = []
    for line, label in lines:
        found = invisible_chars(label or "") if label else []
        if found:
            out.append(f"{path}:{line}: the label holds {name_chars(found)}, an invisible (zero-width "
                       f"or format) character the model would learn to output. Fix: {INVISIBLE_FIX}.")
    return out
