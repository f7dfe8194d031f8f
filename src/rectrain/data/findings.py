"""A finding: one problem in one file at one line, with a stable code and a fix."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Optional

ERROR = "error"
WARNING = "warning"


@dataclass
class Finding:
    code: str
    file: str
    line: Optional[int]
    message: str
    fix: str
    severity: str = ERROR
    value: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "code": self.code,
            "severity": self.severity,
            "file": self.file,
            "line": self.line,
            "message": self.message,
            "fix": self.fix,
        }
        if self.value is not None:
            out["value"] = self.value
            if any(not (" " <= c < "\x7f") for c in self.value):
                out["value_codepoints"] = codepoints(self.value[:200])
        return out

    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file


def describe_char(ch: str) -> str:
    """``'ำ' (U+0E33 THAI CHARACTER SARA AM)``; invisible characters are shown by name only."""
    name = unicodedata.name(ch, "")
    code = f"U+{ord(ch):04X}"
    label = f"{code} {name}".strip()
    if not ch.isprintable() or ch.isspace() or unicodedata.category(ch) in ("Cf", "Zs", "Zl", "Zp"):
        return f"({label})"
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Mc", "Me"):
        # a combining mark alone renders on a dotted circle; show it that way so it is visible
        return f"'\u25cc{ch}' ({label})"
    return f"'{ch}' ({label})"


def describe_chars(chars: Iterable[str], limit: int = 8) -> str:
    items = list(dict.fromkeys(chars))
    text = ", ".join(describe_char(c) for c in items[:limit])
    if len(items) > limit:
        text += f" and {len(items) - limit} more"
    return text


def codepoints(text: str) -> str:
    """``'น้ำ' = U+0E19 U+0E49 U+0E33``."""
    return " ".join(f"U+{ord(c):04X}" for c in text)


def show_value(text: str, limit: int = 60) -> str:
    """A value as a user can read it, with its code points: ``'กี่' (U+0E01 U+0E35 U+0E48)``."""
    shown = text if len(text) <= limit else text[:limit] + "…"
    if all(" " <= c < "\x7f" for c in text):
        return repr(shown)
    cps = codepoints(text if len(text) <= 16 else text[:16]) + (" …" if len(text) > 16 else "")
    return f"{shown!r} ({cps})"
