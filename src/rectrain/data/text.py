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
from typing import List

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
