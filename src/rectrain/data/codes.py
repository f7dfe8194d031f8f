"""Stable finding codes: severity and the fix a user needs."""

from __future__ import annotations

from typing import Dict, Tuple

from rectrain.data.findings import ERROR, WARNING

# code -> (severity, fix)
CODES: Dict[str, Tuple[str, str]] = {
    "not-utf8": (ERROR, "re-save the label file as UTF-8 (e.g. `iconv -f TIS-620 -t UTF-8 in > out`)."),
    "bom": (WARNING, "save the file as UTF-8 without BOM; the engine reads the BOM as part of the "
                     "first image path (--write-clean removes it)."),
    "crlf": (WARNING, "convert to LF line ends (`dos2unix`, or --write-clean); the engine keeps the "
                      "CR at the end of the label."),
    "blank-line": (WARNING, "delete the empty line."),
    "no-tab": (ERROR, "separate the image path and the label with one TAB character."),
    "extra-tab": (ERROR, "keep exactly one TAB per line; the engine ignores everything after a second "
                         "TAB, so the label is cut there."),
    "empty-label": (ERROR, "write the text of the image after the TAB, or remove the line."),
    "whitespace-edge": (WARNING, "remove the spaces at the start/end of the label unless the image "
                                 "shows them."),
    "path-escape": (ERROR, "use paths relative to the images root, without `..` leaving it."),
    "missing-image": (ERROR, "fix the path (relative to --images-root) or remove the line."),
    "unreadable-image": (ERROR, "re-export the image as PNG or JPEG, or remove the line."),
    "tiny-image": (ERROR, "remove the line, or re-crop the word with more pixels."),
    "huge-image": (ERROR, "crop the word out of the picture (or remove the line); a training worker "
                          "would need gigabytes to decode it."),
    "large-image": (WARNING, "check that the line names a word crop, not a page or a photo; crop "
                             "or shrink it (the engine resizes it to the input height anyway)."),
    "duplicate": (WARNING, "remove the repeated line; it weighs the sample twice."),
    "conflicting-label": (ERROR, "check the image and keep the line with the right label."),
    "unknown-char": (ERROR, "add the character to the dictionary (`rectrain data dict --base`) or "
                            "fix the label; the engine silently drops characters it does not know."),
    "too-long": (ERROR, "raise max_text_length, shorten the label, or remove the line; the engine "
                        "silently skips longer samples."),
    "dropped-as-written": (ERROR, "train on the --write-clean output (it writes the composed form, which "
                                  "the dictionary holds), or add the character to the dictionary."),
    "invisible-char": (WARNING, "delete the invisible character(s) from the label (zero-width, word "
                                "joiner, BOM, bidi control, soft hyphen); the image does not show them, "
                                "yet the model would learn to output them."),
    "not-nfc": (WARNING, "normalize the label (--write-clean does it) and the dictionary alike."),
    "space-not-in-dict": (ERROR, "set --use-space-char (use_space_char: True in the config) or remove "
                                 "the spaces; the engine silently drops them."),
}

ORDER = list(CODES) + ["dict-multi-char", "dict-empty-line", "dict-duplicate", "dict-crlf",
                       "dict-whitespace"]


# errors that --write-clean fixes: the line is written (fixed), not left out
CLEANABLE = {"dropped-as-written"}


def severity(code: str) -> str:
    if code.startswith("dict-"):
        return WARNING
    return CODES[code][0]


def fix(code: str) -> str:
    return CODES[code][1]
