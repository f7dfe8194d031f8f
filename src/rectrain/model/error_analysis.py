"""Error analysis of recognition results from aligned edit operations (no engine needed).

For ``(label, prediction)`` pairs, each minimal alignment (:func:`rectrain.model.scores.align`)
gives substitutions (label character read as another), deletions (a label character not
read) and insertions (a character read that is not in the label). From them:

- confusions: every (label char, read char) pair with its count, by kind;
- CER and word accuracy by label length (code points);
- errors by character class. For Thai: consonants, leading / following / above / below
  vowels, tone marks, other marks (thanthakhat, nikhahit ...), digits; then Latin letters,
  spaces and other characters. A class's error rate is (substitutions + deletions of its label
  characters) / its label characters; insertions are counted on the class of the character read.

Everything is in code points, as the engine counts them: a dropped tone mark is one error.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Tuple

from rectrain.model.scores import DEL, EQUAL, INS, SUB, align, describe_char, edit_distance, normalize

# class name -> description (report order)
CLASSES: Dict[str, str] = dict([
    ("thai_consonant", "Thai consonants (ก-ฮ)"),
    ("thai_vowel_leading", "Thai leading vowels (เ แ โ ใ ไ)"),
    ("thai_vowel_following", "Thai following vowels (ะ า ำ ๅ ฤ ฦ)"),
    ("thai_vowel_above", "Thai vowels above (ั ิ ี ึ ื ็)"),
    ("thai_vowel_below", "Thai vowels below (ุ ู ฺ)"),
    ("thai_tone_mark", "Thai tone marks (่ ้ ๊ ๋)"),
    ("thai_other_mark", "Thai other marks (์ ํ ๎)"),
    ("digit", "digits (0-9, ๐-๙)"),
    ("thai_other", "other Thai signs (ฯ ๆ ฿ ๏ ๚ ๛)"),
    ("latin", "Latin letters"),
    ("space", "spaces"),
    ("other", "other characters"),
])
_FOLLOWING = {0x0E30, 0x0E32, 0x0E33, 0x0E45, 0x0E24, 0x0E26}
_ABOVE = {0x0E31, 0x0E34, 0x0E35, 0x0E36, 0x0E37, 0x0E47}
_BELOW = {0x0E38, 0x0E39, 0x0E3A}
_OTHER_MARK = {0x0E4C, 0x0E4D, 0x0E4E}


def char_class(ch: str) -> str:
    """The class of one code point (see :data:`CLASSES`)."""
    if not ch:
        return "other"
    cp = ord(ch[0])
    if 0x0E01 <= cp <= 0x0E2E:
        return "thai_vowel_following" if cp in _FOLLOWING else "thai_consonant"
    if 0x0E40 <= cp <= 0x0E44:
        return "thai_vowel_leading"
    if cp in _FOLLOWING:
        return "thai_vowel_following"
    if cp in _ABOVE:
        return "thai_vowel_above"
    if cp in _BELOW:
        return "thai_vowel_below"
    if 0x0E48 <= cp <= 0x0E4B:
        return "thai_tone_mark"
    if cp in _OTHER_MARK:
        return "thai_other_mark"
    if 0x0E50 <= cp <= 0x0E59 or ch.isascii() and ch.isdigit():
        return "digit"
    if 0x0E00 <= cp <= 0x0E7F:
        return "thai_other"
    if ch.isascii() and ch.isalpha():
        return "latin"
    if ch.isspace():
        return "space"
    return "other"


@dataclass
class ClassStats:
    name: str
    reference: int = 0  # label characters of this class
    substituted: int = 0
    deleted: int = 0
    inserted: int = 0  # characters of this class read but not in the label

    @property
    def errors(self) -> int:
        return self.substituted + self.deleted

    @property
    def error_rate(self) -> float:
        return self.errors / self.reference if self.reference else 0.0

    def as_dict(self) -> Dict[str, Any]:
        return {"class": self.name, "description": CLASSES.get(self.name, self.name),
                "reference_chars": self.reference, "substituted": self.substituted,
                "deleted": self.deleted, "inserted": self.inserted,
                "error_rate": round(self.error_rate, 6)}


@dataclass
class LengthBucket:
    length: int
    samples: int = 0
    correct: int = 0
    errors: int = 0
    reference_chars: int = 0

    @property
    def cer(self) -> float:
        return self.errors / self.reference_chars if self.reference_chars else 0.0

    @property
    def word_accuracy(self) -> float:
        return self.correct / self.samples if self.samples else 0.0

    def as_dict(self) -> Dict[str, Any]:
        return {"length": self.length, "samples": self.samples, "correct": self.correct,
                "word_accuracy": round(self.word_accuracy, 6), "cer": round(self.cer, 6),
                "char_errors": self.errors, "reference_chars": self.reference_chars}


@dataclass
class ErrorAnalysis:
    samples: int
    substitutions: Counter = field(default_factory=Counter)  # (label char, read char) -> n
    deletions: Counter = field(default_factory=Counter)  # label char -> n
    insertions: Counter = field(default_factory=Counter)  # read char -> n
    classes: Dict[str, ClassStats] = field(default_factory=dict)
    lengths: Dict[int, LengthBucket] = field(default_factory=dict)
    class_confusions: Counter = field(default_factory=Counter)  # (label class, read class) -> n

    @property
    def has_thai(self) -> bool:
        return any(name.startswith("thai_") and s.reference for name, s in self.classes.items())

    def top_operations(self, top: int = 20) -> List[Tuple[str, str, str, int]]:
        """``(kind, label char, read char, count)``, most frequent first."""
        ops = [(SUB, r, h, n) for (r, h), n in self.substitutions.items()]
        ops += [(DEL, r, "", n) for r, n in self.deletions.items()]
        ops += [(INS, "", h, n) for h, n in self.insertions.items()]
        return sorted(ops, key=lambda o: -o[3])[:top]

    def as_dict(self, top: int = 50) -> Dict[str, Any]:
        def op(kind: str, r: str, h: str, n: int) -> Dict[str, Any]:
            return {"kind": kind, "label": r, "predicted": h, "count": n,
                    "label_class": char_class(r) if r else None,
                    "predicted_class": char_class(h) if h else None,
                    "text": f"{describe_char(r)} -> {describe_char(h)}"}

        return {
            "samples": self.samples,
            "operations": {"substitutions": sum(self.substitutions.values()),
                           "deletions": sum(self.deletions.values()),
                           "insertions": sum(self.insertions.values())},
            "top_operations": [op(*o) for o in self.top_operations(top)],
            "by_class": [s.as_dict() for s in self.classes.values() if s.reference or s.inserted],
            "class_confusions": [{"label_class": a, "predicted_class": b, "count": n}
                                 for (a, b), n in self.class_confusions.most_common()],
            "by_length": [b.as_dict() for _, b in sorted(self.lengths.items())],
        }


def analyse_errors(pairs: Iterable[Tuple[str, str]], ignore_space: bool = True) -> ErrorAnalysis:
    """Analyse ``(label, prediction)`` pairs (see the module docstring)."""
    result = ErrorAnalysis(samples=0)
    classes = {name: ClassStats(name) for name in CLASSES}
    for label, pred in pairs:
        ref, hyp = normalize(label, ignore_space), normalize(pred, ignore_space)
        result.samples += 1
        for ch in ref:
            classes[char_class(ch)].reference += 1
        bucket = result.lengths.setdefault(len(ref), LengthBucket(len(ref)))
        bucket.samples += 1
        bucket.reference_chars += len(ref)
        if ref == hyp:
            bucket.correct += 1
            continue
        bucket.errors += edit_distance(ref, hyp)
        for kind, r, h in align(ref, hyp):
            if kind == EQUAL:
                continue
            if kind == SUB:
                result.substitutions[(r, h)] += 1
                classes[char_class(r)].substituted += 1
                result.class_confusions[(char_class(r), char_class(h))] += 1
            elif kind == DEL:
                result.deletions[r] += 1
                classes[char_class(r)].deleted += 1
                result.class_confusions[(char_class(r), "(missing)")] += 1
            else:
                result.insertions[h] += 1
                classes[char_class(h)].inserted += 1
                result.class_confusions[("(extra)", char_class(h))] += 1
    result.classes = classes
    return result
