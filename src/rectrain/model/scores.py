"""Recognition metrics on plain strings, no engine needed.

Units are Unicode code points, as the engine's CTC label encoder counts them: a Thai syllable
such as ``สวัสดี`` is 6 units (the vowel and tone marks above and below the line are code points
of their own), so a dropped tone mark is one character error.

- word accuracy: exact matches / samples;
- CER: total edit distance / total reference characters;
- normalized edit distance as the engine's ``RecMetric`` reports it:
  ``1 - mean(edit_distance / max(len(pred), len(label)))``;
- confusions: substitutions, deletions and insertions from an edit-distance alignment.

``ignore_space=True`` (the engine's ``RecMetric`` default) removes spaces from both strings
before anything is compared.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

try:  # the engine's own dependency (its RecMetric uses it); same numbers, C speed
    from rapidfuzz.distance import Levenshtein as _rapidfuzz
except ImportError:  # pragma: no cover - the pure-Python path below gives the same result
    _rapidfuzz = None  # type: ignore[assignment]

# Alignment operations.
EQUAL, SUB, DEL, INS = "equal", "sub", "del", "ins"


def normalize(text: str, ignore_space: bool = True) -> str:
    return text.replace(" ", "") if ignore_space else text


def _distance_table(ref: str, hyp: str) -> List[List[int]]:
    rows, cols = len(ref) + 1, len(hyp) + 1
    table = [[0] * cols for _ in range(rows)]
    for i in range(rows):
        table[i][0] = i
    for j in range(cols):
        table[0][j] = j
    for i in range(1, rows):
        r = ref[i - 1]
        row, prev = table[i], table[i - 1]
        for j in range(1, cols):
            cost = 0 if r == hyp[j - 1] else 1
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
    return table


def edit_distance(ref: str, hyp: str) -> int:
    """Levenshtein distance (unit costs) between two strings, in code points."""
    if ref == hyp:
        return 0
    if _rapidfuzz is not None:
        return int(_rapidfuzz.distance(ref, hyp))
    return _edit_distance_py(ref, hyp)


def _edit_distance_py(ref: str, hyp: str) -> int:
    if not ref or not hyp:
        return max(len(ref), len(hyp))
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def normalized_edit_distance(ref: str, hyp: str) -> float:
    """Edit distance / the longer length (0.0 for two empty strings), as rapidfuzz's
    ``Levenshtein.normalized_distance`` that the engine's RecMetric uses."""
    longest = max(len(ref), len(hyp))
    return edit_distance(ref, hyp) / longest if longest else 0.0


def align(ref: str, hyp: str) -> List[Tuple[str, str, str]]:
    """One minimal alignment as ``(op, ref_char, hyp_char)``; ``""`` stands for the missing
    side of an insertion or deletion. Ties prefer substitution, then deletion."""
    table = _distance_table(ref, hyp)
    i, j = len(ref), len(hyp)
    ops: List[Tuple[str, str, str]] = []
    while i > 0 or j > 0:
        if i > 0 and j > 0:
            cost = 0 if ref[i - 1] == hyp[j - 1] else 1
            if table[i][j] == table[i - 1][j - 1] + cost:
                ops.append((EQUAL if cost == 0 else SUB, ref[i - 1], hyp[j - 1]))
                i, j = i - 1, j - 1
                continue
        if i > 0 and table[i][j] == table[i - 1][j] + 1:
            ops.append((DEL, ref[i - 1], ""))
            i -= 1
        else:
            ops.append((INS, "", hyp[j - 1]))
            j -= 1
    ops.reverse()
    return ops


def describe_char(ch: str) -> str:
    """``'ั' U+0E31 THAI CHARACTER MAI HAN-AKAT``; ``∅`` for nothing. Combining marks are shown
    on a dotted circle so they stay visible on their own."""
    if not ch:
        return "∅"
    shown = ("◌" + ch) if unicodedata.combining(ch) or unicodedata.category(ch) == "Mn" else ch
    if ch == " ":
        shown = "␠"
    codes = " ".join(f"U+{ord(c):04X}" for c in ch)
    names = " ".join(unicodedata.name(c, "?") for c in ch)
    return f"'{shown}' {codes} {names}"


@dataclass
class Confusion:
    """``label`` was read as ``predicted`` ``count`` times ("" = nothing: a deletion when
    ``predicted`` is empty, an insertion when ``label`` is empty)."""

    label: str
    predicted: str
    count: int

    @property
    def kind(self) -> str:
        if not self.predicted:
            return DEL
        if not self.label:
            return INS
        return SUB

    def describe(self) -> str:
        return f"{describe_char(self.label)} -> {describe_char(self.predicted)}: {self.count}"

    def as_dict(self) -> dict:
        return {"label": self.label, "predicted": self.predicted, "count": self.count,
                "kind": self.kind,
                "label_codepoints": [f"U+{ord(c):04X}" for c in self.label],
                "predicted_codepoints": [f"U+{ord(c):04X}" for c in self.predicted],
                "text": self.describe()}


def confusions(pairs: Iterable[Tuple[str, str]], top: Optional[int] = 20,
               ignore_space: bool = True) -> List[Confusion]:
    """Most frequent character errors over ``(label, prediction)`` pairs, most frequent first
    (ties in first-seen order)."""
    counter: Counter = Counter()
    for label, pred in pairs:
        ref, hyp = normalize(label, ignore_space), normalize(pred, ignore_space)
        if ref == hyp:
            continue  # most samples of a usable model: nothing to align
        for op, r, h in align(ref, hyp):
            if op != EQUAL:
                counter[(r, h)] += 1
    items = counter.most_common(top)
    return [Confusion(label=r, predicted=h, count=n) for (r, h), n in items]


@dataclass
class TextMetrics:
    samples: int
    correct: int
    word_accuracy: float
    cer: float
    norm_edit_dis: float
    char_errors: int
    reference_chars: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def text_metrics(pairs: Sequence[Tuple[str, str]], ignore_space: bool = True) -> TextMetrics:
    """Word accuracy, CER and the engine's normalized edit distance over ``(label, pred)``."""
    correct = errors = ref_chars = 0
    ned_sum = 0.0
    for label, pred in pairs:
        ref, hyp = normalize(label, ignore_space), normalize(pred, ignore_space)
        correct += ref == hyp
        errors += edit_distance(ref, hyp)
        ref_chars += len(ref)
        ned_sum += normalized_edit_distance(ref, hyp)
    n = len(pairs)
    return TextMetrics(
        samples=n,
        correct=correct,
        word_accuracy=correct / n if n else 0.0,
        cer=errors / max(ref_chars, 1),
        norm_edit_dis=1.0 - ned_sum / n if n else 0.0,
        char_errors=errors,
        reference_chars=ref_chars,
    )
