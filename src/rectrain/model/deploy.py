"""Make an exported model load where users deploy it: PaddleOCR 3.x (PaddleX's text
recognition predictor), and say how.

The engine's exporter (PaddleOCR 2.10) writes an ``inference.yml`` that PaddleOCR 3.x refuses:
it copies the Eval transforms, label encoders included (``CTCLabelEncode``,
``MultiLabelEncode``, ``KeepKeys``), names the SVTR resize ``SVTRRecResizeImg``, and has no
``Global.model_name``. PaddleX's predictor accepts exactly two preprocessing ops, ``DecodeImage``
and ``RecResizeImg`` (anything else fails an ``assert``), decodes CTC only, and needs the model
name the caller passes to be the one in the file. :func:`make_deployable` rewrites the file
the exporter wrote into that form; nothing in the engine changes.

What the rewritten file means, checked against PaddleX 3.7 (``OCRReisizeNormImg``):

- ``RecResizeImg: {image_shape: [C, H, W]}`` resizes each image to height H keeping its aspect
  ratio, at least W wide, and pads with zeros: the same arithmetic as the engine's
  ``TextRecognizer.resize_norm_img`` for CRNN and PP-OCR (SVTR_LCNet / SVTR_HGNet) models, so
  ``rectrain evaluate`` (one image at a time) and PaddleOCR 3.x read the same tensor.
- Fixed-shape models (``SVTR``: position embeddings of a fixed size) are stretched to exactly
  W x H by the engine; PaddleX does that only when the caller passes ``input_shape``
  (``text_rec_input_shape`` in the pipeline), so the printed load lines carry it.
- ``PostProcess.character_dict`` is the dictionary as the engine's decoder reads it (one class
  per line, empty lines included); PaddleX appends the space class itself.

``Global.model_name``: PaddleX uses the name to pick the predictor class (every name in its
text-recognition model list gives the same ``TextRecRunnerPredictor`` for Paddle Inference and
ONNX Runtime), the font that draws results, and, for ``arabic_*`` names only, to reorder the
text right to left. No recognition name is on its oneDNN blocklist. So rectrain names the model
after the non-Latin script of its dictionary (``th_PP-OCRv5_mobile_rec`` when it holds Thai
letters: results are drawn with a Thai font), otherwise ``PP-OCRv5_mobile_rec``; the name is a
label PaddleX requires, not a description of the architecture.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from rectrain.logs import get_logger
from rectrain.outputs import write_text
from rectrain.yamlfile import read_yaml

log = get_logger("model.deploy")

INFERENCE_YML = "inference.yml"
# Algorithms whose engine inference resizes exactly like PaddleX's dynamic-width resize
# (tools/infer/predict_rec.py resize_norm_img, default branch).
DYNAMIC_WIDTH = ("CRNN", "Rosetta", "STARNet", "SVTR_LCNet", "SVTR_HGNet")
# Algorithms the engine stretches to the fixed input shape (resize_norm_img_svtr); PaddleX
# does the same only with ``input_shape`` given.
FIXED_SHAPE = ("SVTR",)
DEFAULT_MODEL_NAME = "PP-OCRv5_mobile_rec"
# Registered PaddleX 3.7 recognition names per Unicode script of the dictionary.
_SCRIPT_NAMES = {
    "THAI": "th_PP-OCRv5_mobile_rec",
    "GREEK": "el_PP-OCRv5_mobile_rec",
    "HANGUL": "korean_PP-OCRv5_mobile_rec",
    "CYRILLIC": "cyrillic_PP-OCRv5_mobile_rec",
    "DEVANAGARI": "devanagari_PP-OCRv5_mobile_rec",
    "TAMIL": "ta_PP-OCRv5_mobile_rec",
    "TELUGU": "te_PP-OCRv5_mobile_rec",
}
# Ops of the Paddle program that Paddle 3.3's oneDNN executor cannot run (bilinear
# interpolation, e.g. in SVTR's STN: "ConvertPirAttribute2RuntimeAttribute not support
# [pir::ArrayAttribute<pir::DoubleAttribute>]"). Paddle Inference turns oneDNN on by default
# on the CPU, so such a model must run with it off. See docs/problem-log.md.
_ONEDNN_BREAKERS = re.compile(rb"(?<![a-z_])(bilinear|nearest|bicubic|linear|trilinear)_interp")


def _script(ch: str) -> str:
    try:
        return unicodedata.name(ch).split()[0]
    except ValueError:
        return ""


def choose_model_name(chars: Sequence[str], arabic_reversed: bool = False) -> Tuple[str, str]:
    """``(Global.model_name, why)`` for a dictionary's classes (see the module docstring)."""
    if arabic_reversed:  # the engine decodes right to left; PaddleX does only for arabic_* names
        return "arabic_PP-OCRv5_mobile_rec", "the dictionary is decoded right to left (Arabic)"
    scripts = Counter(s for s in (_script(c) for c in chars if len(c) == 1 and c.isalpha())
                      if s in _SCRIPT_NAMES)
    if scripts:
        script = scripts.most_common(1)[0][0]
        return (_SCRIPT_NAMES[script], f"the dictionary holds {script.title()} letters: PaddleX "
                "draws results with its font for that script")
    return DEFAULT_MODEL_NAME, "a registered PaddleX recognition name (Latin/Chinese font)"


def onednn_breakers(program: Path) -> List[str]:
    """Names of ops in the exported program that oneDNN on Paddle 3.3 cannot run."""
    try:
        data = Path(program).read_bytes()
    except OSError:
        return []
    return sorted({m.group(0).decode() for m in _ONEDNN_BREAKERS.finditer(data)})


def _resize_op(transforms: Sequence[Any]) -> Tuple[Optional[str], Optional[List[int]]]:
    for op in transforms:
        if isinstance(op, dict):
            for name, params in op.items():
                if "ResizeImg" in str(name) and isinstance(params, dict) and params.get("image_shape"):
                    return str(name), [int(v) for v in params["image_shape"]]
    return None, None


def make_deployable(model_dir: Path, *, algorithm: str, postprocess: Optional[str],
                    chars: Optional[List[str]], decode: Dict[str, Any],
                    arabic_reversed: bool = False) -> Dict[str, Any]:
    """Rewrite ``model_dir/inference.yml`` (as the engine's exporter wrote it) so that
    PaddleOCR 3.x loads it as is. Returns what model.json records under ``deploy.paddleocr3``
    (``loadable`` False with ``why`` when PaddleOCR 3.x cannot read this model the way the
    engine does; the engine's file is then left as it was)."""
    path = Path(model_dir) / INFERENCE_YML
    written = read_yaml(path, what="inference.yml") or {}
    transforms = ((written.get("PreProcess") or {}).get("transform_ops")) or []
    resize_name, shape = _resize_op(transforms)
    why = None
    if postprocess != "CTCLabelDecode":
        why = f"PaddleOCR 3.x decodes CTC only; this model's PostProcess is {postprocess}"
    elif algorithm not in DYNAMIC_WIDTH + FIXED_SHAPE:
        why = (f"PaddleOCR 3.x resizes images differently from the engine for algorithm "
               f"{algorithm} (supported: {', '.join(DYNAMIC_WIDTH + FIXED_SHAPE)})")
    elif shape is None:
        why = "the exporter's inference.yml has no resize op with an image_shape"
    if why:
        log.warning("not loadable in PaddleOCR 3.x: %s.", why)
        return {"loadable": False, "why": why}
    assert shape is not None
    if chars is None:  # the engine's built-in dictionary (no file)
        chars = list("0123456789abcdefghijklmnopqrstuvwxyz")
    engine_chars = (written.get("PostProcess") or {}).get("character_dict")
    if isinstance(engine_chars, list) and engine_chars != chars:
        log.warning("the exporter read the dictionary differently from the engine's decoder "
                    "(%d vs %d classes); inference.yml gets the decoder's reading.",
                    len(engine_chars), len(chars))
    name, reason = choose_model_name(chars, arabic_reversed)
    ops = [{"DecodeImage": {"img_mode": str(decode.get("img_mode", "BGR")), "channel_first": False}},
           {"RecResizeImg": {"image_shape": shape}}]
    dropped = [next(iter(op)) for op in transforms
               if isinstance(op, dict) and next(iter(op), None) not in ("DecodeImage", "RecResizeImg")]
    config = {"Global": {"model_name": name},
              "PreProcess": {"transform_ops": ops},
              "PostProcess": {"name": "CTCLabelDecode", "character_dict": list(chars)}}
    write_text(path, yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    fixed = algorithm in FIXED_SHAPE
    return {"loadable": True, "model_name": name, "model_name_why": reason,
            "input_shape": shape if fixed else None,
            "resize": "fixed (stretched to the input shape)" if fixed else
                      "dynamic width (aspect ratio kept, padded)",
            "rewritten": {"dropped_ops": [d for d in dropped if d != resize_name],
                          "resize_op": f"{resize_name} -> RecResizeImg"
                          if resize_name != "RecResizeImg" else "RecResizeImg"}}


def load_lines(model_dir: Path, info: Dict[str, Any]) -> List[str]:
    """The lines that load this model in PaddleOCR 3.x (module, pipeline) and ONNX Runtime."""
    deploy = (info.get("deploy") or {})
    p3 = deploy.get("paddleocr3") or {}
    folder = str(Path(model_dir).resolve())
    if not p3.get("loadable"):
        lines = [f"PaddleOCR 3.x: not loadable ({p3.get('why', 'exported before rectrain wrote it')})."]
    else:
        extra_module, extra_pipe = "", ""
        if p3.get("input_shape"):
            shape = tuple(p3["input_shape"])
            extra_module += f", input_shape={shape}"
            extra_pipe += f", text_rec_input_shape={shape}"
        if not deploy.get("cpu_onednn", True):
            extra_module += ", enable_mkldnn=False"
            extra_pipe += ", enable_mkldnn=False"
        name = p3["model_name"]
        lines = [
            "PaddleOCR 3.x, the recognition module (reads like `rectrain evaluate`):",
            "  from paddleocr import TextRecognition",
            f"  model = TextRecognition(model_dir={folder!r}, model_name={name!r}{extra_module})",
            "  for res in model.predict(['word.png']): print(res['rec_text'], res['rec_score'])",
            "PaddleOCR 3.x, the OCR pipeline (its detection, this recognizer; batch size 1 reads "
            "each crop like `rectrain evaluate`, larger batches pad crops to their neighbours):",
            "  from paddleocr import PaddleOCR",
            f"  ocr = PaddleOCR(text_recognition_model_dir={folder!r}, "
            f"text_recognition_model_name={name!r}, text_recognition_batch_size=1{extra_pipe})",
        ]
    onnx = deploy.get("onnx")
    if onnx:
        lines += [f"ONNX Runtime: {folder}/{onnx['file']} (input {onnx['input']['name']} "
                  f"{onnx['input']['shape']}); `rectrain evaluate --backend onnx` reads it"
                  + (", and PaddleOCR 3.x with engine='onnxruntime'" if p3.get("loadable") else "")]
    return lines
