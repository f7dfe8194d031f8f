"""Official PaddleOCR dictionaries recognised by content, and the stale Thai one refused where
pretrained weights are involved.

The official ``th_PP-OCRv5_mobile_rec`` weights have 526 CTC outputs = blank + the 524 lines of
the *current* upstream ``ppocr/utils/dict/ppocrv5_th_dict.txt`` + space. An older upstream
revision (commit 9b0493f, still in many copies) has 523 lines: line 441 holds ``ωก``, so ``ก``
(U+0E01, the most frequent Thai consonant) has no line of its own and the engine drops it from
every label, and its 525 classes do not fit the released weights.

Recognition: the engine's lines (``readlines``, ``strip("\\n").strip("\\r\\n")``), each
NFKC-normalised, joined with ``\\n`` and hashed (SHA-256). NFKC because copies that went through
text tools normalise compatibility characters (the ohm sign, the angstrom sign) without changing
the line count; the classes are the same. A file that matches no fingerprint but has a line
known only from the stale Thai revision is reported as that revision too.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, List, Optional, Tuple, Union

from rectrain.errors import ConfigError

if TYPE_CHECKING:
    from rectrain.data.findings import Finding

PathLike = Union[str, "os.PathLike[str]"]
UPSTREAM = "https://github.com/PaddlePaddle/PaddleOCR/blob/main/"
CURRENT_THAI_URL = ("https://raw.githubusercontent.com/PaddlePaddle/PaddleOCR/main/ppocr/utils/dict/"
                    "ppocrv5_th_dict.txt")


@dataclass(frozen=True)
class OfficialDict:
    name: str  # a short name for messages
    upstream: str  # path in PaddlePaddle/PaddleOCR
    lines: int
    fingerprint: str  # sha256 of the NFKC-normalised lines joined with "\n"
    status: str  # current | stale | legacy
    models: str  # the official models trained with it
    note: str = ""

    def describe(self) -> str:
        text = f"the official {self.upstream} ({self.lines} lines, {self.status}; {self.models})"
        return text + (f". {self.note}" if self.note else "")


KNOWN: Tuple[OfficialDict, ...] = (
    OfficialDict("ppocrv5_th_dict", "ppocr/utils/dict/ppocrv5_th_dict.txt", 524,
                 "64e240d37791f9d08f8d09b42b86c0612e958bcc467558f77ca7431813d70133", "current",
                 "th_PP-OCRv5_mobile_rec: 526 CTC outputs = blank + 524 lines + space"),
    OfficialDict("ppocrv5_th_dict@9b0493f", "ppocr/utils/dict/ppocrv5_th_dict.txt", 523,
                 "49d05355306111bc4c8fcf2ba4bbcadd9c28a065afff0b7d8c9a90efc51e8067", "stale",
                 "no released weights fit it (525 CTC outputs)",
                 "Line 441 is 'ωก': ก (U+0E01) has no line of its own, so the engine drops it "
                 "from every label"),
    OfficialDict("th_dict", "ppocr/utils/dict/th_dict.txt", 77,
                 "df1532839b322a1bd03614f26be888566436ad410d467664c4f9d03205bb1a09", "legacy",
                 "the PP-OCRv3 Thai models; not th_PP-OCRv5_mobile_rec"),
    OfficialDict("en_dict", "ppocr/utils/dict/en_dict.txt", 63,
                 "01e782271a30d94e3ca9abfbf17760e300a5158c0413866ab3021795533ea95c", "legacy",
                 "the PP-OCRv3/v4 English models"),
)
STALE_MARKERS = {"ωก": "ppocrv5_th_dict@9b0493f"}  # a line only the stale revision has


def engine_lines(path: PathLike) -> List[str]:
    """The lines as the engine reads them (no use_space_char); unreadable files give []."""
    try:
        with open(path, "rb") as fh:
            raw = fh.readlines()
        return [r.decode("utf-8").strip("\n").strip("\r\n") for r in raw]
    except (OSError, UnicodeDecodeError):
        return []


def fingerprint(lines: List[str]) -> str:
    text = "\n".join(unicodedata.normalize("NFKC", line) for line in lines)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def identify_lines(lines: List[str]) -> Optional[OfficialDict]:
    if not lines:
        return None
    fp = fingerprint(lines)
    for known in KNOWN:
        if known.lines == len(lines) and known.fingerprint == fp:
            return known
    for line in lines:
        name = STALE_MARKERS.get(line)
        if name:
            return next(k for k in KNOWN if k.name == name)
    return None


def identify(path: PathLike) -> Optional[OfficialDict]:
    """The official dictionary ``path`` is (by content), or None."""
    return identify_lines(engine_lines(path))


def stale_message(path: PathLike, known: OfficialDict) -> str:
    return (f"{path} is the stale revision of the official Thai dictionary ({known.lines} lines, "
            f"upstream commit 9b0493f): {known.note}, and its {known.lines + 2} classes do not fit "
            "the released th_PP-OCRv5_mobile_rec weights (526 = blank + 524 lines + space).")


STALE_FIX = ("use the current upstream ppocr/utils/dict/ppocrv5_th_dict.txt (524 lines, ψ, ω and "
             f"ก on lines of their own): {CURRENT_THAI_URL}")


def check_official(path: PathLike, *, pretrained: bool) -> Tuple[Optional[OfficialDict], List[str]]:
    """``(what the dictionary is, warnings)``; raises ConfigError (exit 2) for the stale Thai
    dictionary when pretrained weights are involved (a warning otherwise)."""
    known = identify(path)
    if known is None or known.status != "stale":
        return known, []
    if pretrained:
        raise ConfigError(stale_message(path, known) + " Training from pretrained weights with it "
                          "would mislabel every class after line 440.", STALE_FIX)
    return known, [stale_message(path, known) + f" Fix: {STALE_FIX}"]


def official_name(path: Optional[PathLike]) -> Optional[str]:
    """One line for reports: which official dictionary ``path`` is, or None."""
    known = identify(path) if path is not None else None
    return known.describe() if known else None


def official_findings(path: PathLike) -> List[Finding]:
    """A warning finding for the stale Thai dictionary (``data validate --dict``)."""
    from rectrain.data.findings import WARNING, Finding

    known = identify(path)
    if known is None or known.status != "stale":
        return []
    return [Finding("dict-stale-official", str(path), None, stale_message(path, known) +
                    " With pretrained weights `config build` and `train` refuse it.",
                    STALE_FIX, WARNING)]


def grow_hint(base: PathLike, new: PathLike, added: bool) -> str:
    """What `data dict --base` users do next: keep the pretrained head by growing it."""
    known = identify(base)
    if known is not None and known.status == "stale":
        return (f"warning: {stale_message(base, known)} Fix: {STALE_FIX}, then run this command "
                "again with it as --base.")
    if not added:
        return "no new characters: train with the base dictionary and the weights as they are."
    return (f"to keep the pretrained head, grow it: `rectrain ckpt extend-dict --pretrained "
            f"P.pdparams --base-dict {base} --dict {new} -o grown.pdparams` (add "
            "--use-space-char if the config has it), or pass `--pretrained P.pdparams --dict "
            f"{new} --base-dict {base}` to `rectrain config build`, which does it for you.")
