"""Grow a recognition head for a dictionary with new characters appended, instead of letting
PaddleOCR skip the head tensors (one shape warning) and train them from scratch.

NEW must be OLD (same lines, same order, empty and duplicate lines included) plus new lines at
the end. In every class-indexed head tensor (see :mod:`rectrain.checkpoints.pdparams` for the
layouts) the rows of blank, the old lines, the space and the special tokens keep their meaning:
rows before the first new index stay where they are, the rest (space, NRTR's unused last row,
SAR's <UKN>/<BOS/EOS>/<PAD>) move up by the number of new characters. Every other tensor is
copied unchanged.

New rows start as the **mean of the old characters' rows** (single-code-point lines only; blank,
space and special tokens excluded). Why: a new output column then gives, for any input, the mean
of the old character logits, which is never above the best old class, so greedy decoding of old
text is unchanged before fine-tuning (a zero or small random column would give a logit near 0,
above every class in frames where the model is confident that all classes are unlikely); and the
new class is live from the first step (its probability is not ~0, so it receives gradient),
at the scale of its neighbours, so Adam moves it as fast as the rest. The same holds for the
NRTR/SAR input embeddings (a new token first looks like "an average character").
The old classes' logits are exactly the old ones; only the softmax normaliser changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Union

from rectrain.checkpoints.pdparams import NAME_MAP_KEY, head_tensors, load_state, save_state
from rectrain.data.dictionary import read_dictionary
from rectrain.errors import UserError
from rectrain.outputs import claim_output_file, record_output

PathLike = Union[str, Path]


@dataclass
class ExtendReport:
    out: Path
    old_lines: int
    new_lines: int
    added: List[str]
    use_space_char: bool
    tensors: Dict[str, tuple] = field(default_factory=dict)  # key -> (old shape, new shape)

    def summary(self) -> str:
        grown = ", ".join(f"{k} {list(a)} -> {list(b)}" for k, (a, b) in self.tensors.items())
        return (f"{self.out}: {len(self.added)} new class(es) {''.join(self.added)!r} after "
                f"{self.old_lines} dictionary lines; grown: {grown}; every other tensor unchanged")


def appended_lines(base_dict: PathLike, new_dict: PathLike) -> List[str]:
    """The lines NEW adds at the end of OLD; raises when NEW is not OLD + appended lines."""
    old = read_dictionary(base_dict).chars
    new = read_dictionary(new_dict).chars
    for i, (a, b) in enumerate(zip(old, new), start=1):
        if a != b:
            raise UserError(
                f"--dict {new_dict}: line {i} is {b!r} but line {i} of --base-dict {base_dict} "
                f"is {a!r}; the weights' rows follow the base dictionary's lines, so a changed, "
                "removed or reordered line would give the old classes the wrong rows.",
                f"start from {base_dict} unchanged (empty and repeated lines included) and append "
                "new characters at its end: `rectrain data dict LABELS --base "
                f"{base_dict} -o NEW.txt` does.")
    if len(new) < len(old):
        raise UserError(f"--dict {new_dict} has {len(new)} lines, fewer than the {len(old)} of "
                        f"--base-dict {base_dict}.",
                        "pass the grown dictionary as --dict and the weights' own as --base-dict.")
    return new[len(old):]


def _grow(value: Any, axis: int, boundary: int, k: int, char_rows: List[int]) -> Any:
    import numpy as np

    arr = np.asarray(value)
    moved = np.moveaxis(arr, axis, 0)
    mean = moved[char_rows].mean(axis=0, dtype=np.float64).astype(arr.dtype)
    new_rows = np.repeat(mean[None], k, axis=0)
    grown = np.concatenate([moved[:boundary], new_rows, moved[boundary:]], axis=0)
    return np.ascontiguousarray(np.moveaxis(grown, 0, axis))


def extend_dictionary(pretrained: PathLike, base_dict: PathLike, new_dict: PathLike,
                      out: PathLike, *, use_space_char: bool = False) -> ExtendReport:
    """Write ``out`` (.pdparams): ``pretrained`` with its head grown from ``base_dict`` to
    ``new_dict``. Refuses ``out`` == ``pretrained``, a NEW that is not OLD + appended lines and
    weights whose head does not fit OLD (with ``use_space_char`` as given)."""
    claim_output_file(out, command="ckpt extend-dict", inputs=[
        ("pretrained weights", pretrained), ("base dictionary", base_dict), ("new dictionary", new_dict)])
    added = appended_lines(base_dict, new_dict)
    if not added:
        raise UserError(f"--dict {new_dict} adds nothing to --base-dict {base_dict}.",
                        "use the weights as they are (no new characters), or append characters.")
    return grow_weights(pretrained, out, read_dictionary(base_dict).chars, added,
                        use_space_char=use_space_char, base_name=str(base_dict))


def grow_weights(pretrained: PathLike, out: PathLike, old_chars: List[str], added: List[str], *,
                 use_space_char: bool, base_name: str) -> ExtendReport:
    """``extend_dictionary`` on lines: ``old_chars`` are the weights' dictionary lines (no
    space), ``added`` the lines appended after them."""
    src, dst = Path(pretrained), Path(out)
    claim_output_file(dst, command="ckpt extend-dict", inputs=[("pretrained weights", src)])
    if dst.suffix != ".pdparams":
        raise UserError(f"-o {dst}: the output must be a .pdparams file.",
                        "pass e.g. -o grown.pdparams.")
    if dst.resolve() == src.resolve() or (dst.exists() and src.exists()
                                          and os.path.samefile(src, dst)):
        raise UserError(f"-o {dst} is the input weights file.",
                        "write the grown weights to a new file; the original stays as it was.")
    n_lines = len(old_chars)
    space = 1 if use_space_char else 0
    ctc_old = 1 + n_lines + space
    state: Dict[str, Any] = load_state(src)
    tensors = head_tensors(state)
    if not tensors:
        raise UserError(f"--pretrained {src}: no recognition head found (CTC fc/fc2, NRTR or "
                        "SAR tensors).", "pass the weights of a CTC or MultiHead recognition model.")
    for t in tensors:
        want = t.layout.size(ctc_old)
        if t.classes != want:
            other = t.ctc_classes - 1 - n_lines
            hint = (" (it fits that dictionary with use_space_char " +
                    ("on" if other == 1 else "off") + ")") if other in (0, 1) and other != space \
                else ""
            raise UserError(
                f"--pretrained {src}: {t.key} has {t.classes} classes, but the base dictionary "
                f"{base_name} ({n_lines} lines, use_space_char {'on' if space else 'off'}) "
                f"implies {want}{hint}.",
                "pass the dictionary these weights were trained with as the base, and "
                "use_space_char exactly as in their config.")
    report = ExtendReport(out=dst, old_lines=n_lines, new_lines=n_lines + len(added),
                          added=list(added), use_space_char=bool(space))
    k = len(added)
    singles = [i for i, c in enumerate(old_chars) if len(c) == 1] or list(range(n_lines))
    new_state = dict(state)
    for t in tensors:
        prefix = t.layout.prefix
        rows = [prefix + i for i in singles]
        new_state[t.key] = _grow(state[t.key], t.layout.axis, prefix + n_lines, k, rows)
        report.tensors[t.key] = (t.shape, tuple(new_state[t.key].shape))
    if NAME_MAP_KEY in state:
        new_state[NAME_MAP_KEY] = state[NAME_MAP_KEY]
    save_state(new_state, dst)
    record_output(dst, command="ckpt extend-dict")
    return report
