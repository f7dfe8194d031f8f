"""``.pdparams`` files without Paddle: read (numpy-only unpickler), write (atomically), and
the recognition head's class-indexed tensors with the layout the engine gives them.

A ``.pdparams`` written by ``paddle.save`` is a pickle (protocol 4) of a dict: parameter name
-> numpy array, plus ``"StructuredToParameterName@@"`` (name -> static name, strings).

Class layouts, read from the engine (PaddleOCR 2.10: ``tools/train.py`` computes
``out_channels_list``; ``ppocr/data/imaug/label_ops.py`` / ``ppocr/postprocess/rec_postprocess.py``
put the special tokens; ``ppocr/modeling/heads``), with L dictionary lines and S = 1 when
``use_space_char`` (the space comes after the lines):

- CTC (``CTCHead``, also ``MultiHead.ctc_head``): ``[blank, line_1..line_L, space]``, C = 1 + L + S
  outputs; ``fc.weight``/``fc2.weight`` are ``[in, C]`` (Paddle's Linear), ``fc.bias`` ``[C]``.
- NRTR (``MultiHead.gtc_head``, a ``Transformer`` built with ``out_channels = C + 3`` that adds
  one more): ``[blank, <unk>, <s>, </s>, line_1..line_L, space, (unused)]``, C + 4 rows:
  ``tgt_word_prj.weight`` ``[d, C+4]`` and ``embedding.embedding.weight`` ``[C+4, d]``.
- SAR (``MultiHead.sar_head``, ``out_channels = C + 2``): ``[line_1..line_L, space, <UKN>,
  <BOS/EOS>, <PAD>]``: ``decoder.embedding.weight`` ``[C+2, d]``, ``decoder.prediction`` ``[in, C+1]``
  (no <PAD> output).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from rectrain.checkpoints import pickles
from rectrain.errors import UserError
from rectrain.fsutil import refuse_special
from rectrain.outputs import atomic_open

PathLike = Union[str, Path]
NAME_MAP_KEY = "StructuredToParameterName@@"


@dataclass(frozen=True)
class Layout:
    """How one head tensor indexes the classes: ``prefix`` special rows before the dictionary
    lines, ``extra`` rows after ``C`` (the CTC size), ``axis`` the class axis."""

    kind: str  # ctc | nrtr | sar
    prefix: int
    extra: int  # rows = C + extra
    axis: int

    def size(self, ctc_classes: int) -> int:
        return ctc_classes + self.extra


# key suffix -> layout; matched on the end of the parameter name (Student./Teacher. prefixes ok)
HEAD_TENSORS = (
    ("ctc_head.fc.weight", Layout("ctc", 1, 0, 1)), ("ctc_head.fc.bias", Layout("ctc", 1, 0, 0)),
    ("ctc_head.fc2.weight", Layout("ctc", 1, 0, 1)), ("ctc_head.fc2.bias", Layout("ctc", 1, 0, 0)),
    ("gtc_head.tgt_word_prj.weight", Layout("nrtr", 4, 4, 1)),
    ("gtc_head.embedding.embedding.weight", Layout("nrtr", 4, 4, 0)),
    ("sar_head.decoder.embedding.weight", Layout("sar", 0, 2, 0)),
    ("sar_head.decoder.prediction.weight", Layout("sar", 0, 1, 1)),
    ("sar_head.decoder.prediction.bias", Layout("sar", 0, 1, 0)),
    ("head.fc.weight", Layout("ctc", 1, 0, 1)), ("head.fc.bias", Layout("ctc", 1, 0, 0)),
    ("head.fc2.weight", Layout("ctc", 1, 0, 1)), ("head.fc2.bias", Layout("ctc", 1, 0, 0)),
)


def load_state(path: PathLike, what: str = "--pretrained") -> Dict[str, Any]:
    """The state dict of a ``.pdparams`` file (numpy arrays), without importing Paddle and
    without running any code from the file."""
    refuse_special(path, what=f"{what} weights file")
    try:
        with open(path, "rb") as fh:
            state = pickles.load(fh, pickles.TENSORS, "a .pdparams file")
    except FileNotFoundError:
        raise UserError(f"{what} {path}: no such weights file.",
                        "pass an existing .pdparams file.") from None
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
        raise UserError(f"{what} {path}: cannot read the weights ({exc}).",
                        "pass a .pdparams file written by PaddleOCR / paddle.save.") from None
    if not isinstance(state, dict):
        raise UserError(f"{what} {path}: not a state dict.",
                        "pass a .pdparams file written by PaddleOCR / paddle.save.")
    return state


def save_state(state: Dict[str, Any], path: PathLike) -> None:
    """Write a state dict as ``paddle.save`` does (pickle protocol 4), atomically."""
    with atomic_open(path, "wb") as fh:
        pickle.dump(state, fh, protocol=4)


@dataclass
class HeadTensor:
    key: str
    layout: Layout
    shape: tuple

    @property
    def classes(self) -> int:
        return int(self.shape[self.layout.axis])

    @property
    def ctc_classes(self) -> int:
        """The CTC size (blank + lines + space) this tensor implies."""
        return self.classes - self.layout.extra


def head_tensors(state: Dict[str, Any]) -> List[HeadTensor]:
    """Every class-indexed head tensor of ``state`` (the Teacher of a distillation excluded)."""
    out: List[HeadTensor] = []
    for key, value in state.items():
        shape = getattr(value, "shape", None)
        if not isinstance(key, str) or not shape or key.startswith(("Teacher.", "Models.Teacher")):
            continue
        for suffix, layout in HEAD_TENSORS:
            if (key == suffix or key.endswith("." + suffix)) and len(shape) > layout.axis:
                out.append(HeadTensor(key, layout, tuple(int(s) for s in shape)))
                break
    return out


def head_kinds(state: Dict[str, Any]) -> Dict[str, HeadTensor]:
    """``{"ctc"|"nrtr"|"sar": the output projection}`` (the tensor the engine's size check
    is about: the weight whose class axis is the output)."""
    found: Dict[str, HeadTensor] = {}
    for t in head_tensors(state):
        if t.layout.axis == 1 and t.layout.kind not in found:
            found[t.layout.kind] = t
    return found


def ctc_classes_of(state: Dict[str, Any]) -> Optional[int]:
    t = head_kinds(state).get("ctc")
    return t.ctc_classes if t else None


def expected_sizes(config: Dict[str, Any], n_classes: int) -> Dict[str, int]:
    """Head output sizes the engine will build (tools/train.py) for ``n_classes`` dictionary
    classes (space included): CTC = classes + blank; the NRTR part of a MultiHead:
    ``out_channels_list`` gives CTC + 3 (<unk>, <s>, </s>) and its Transformer adds one more
    row, so CTC + 4; SAR's prediction layer: CTC + 1. ``{}`` for other decoders."""
    post = (config.get("PostProcess") or {}).get("name")
    if post not in ("CTCLabelDecode", "DistillationCTCLabelDecode"):
        return {}
    ctc = n_classes + 1
    out = {"ctc": ctc}
    losses: List[Any] = (config.get("Loss") or {}).get("loss_config_list") or []
    names = [next(iter(x)) for x in losses if isinstance(x, dict) and x]
    if any("NRTRLoss" in n for n in names):
        out["nrtr"] = ctc + 4
    if any("SARLoss" in n for n in names):
        out["sar"] = ctc + 1
    return out
