"""``model.json``: what an exported model is and what it needs to be read back faithfully.

The exported model is only correct with the dictionary it was trained with (the head's size
and the meaning of each class follow that file line by line) and with the preprocessing and
decoding of the engine that trained it. ``model.json`` records both, and :func:`check_compatible`
refuses a model whose engine or dictionary does not match what would run it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from rectrain.engine import Engine
from rectrain.errors import DataError, UserError
from rectrain.fsutil import sha256_file

MODEL_JSON = "model.json"
FORMAT = "rectrain-recognition-model/1"
# Files the engine's exporter may write for the network: Paddle 3 writes the PIR program as
# inference.json; older Paddle (or PIR switched off) writes inference.pdmodel.
PROGRAM_FILES = ("inference.json", "inference.pdmodel")
PARAMS_FILE = "inference.pdiparams"


def dictionary_chars(path: Path, use_space_char: bool) -> List[str]:
    """The classes the engine builds from a dictionary file, in order, without the CTC blank:
    one per line as ``BaseRecLabelDecode`` reads it (bytes split on ``\\n``, then stripped of
    ``\\n`` and ``\\r\\n`` only), plus a space when ``use_space_char``."""
    data = Path(path).read_bytes()
    chars: List[str] = []
    for number, raw in enumerate(io.BytesIO(data).readlines(), 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"not UTF-8 ({exc.reason} at byte {exc.start})",
                            "save the dictionary as UTF-8.", path=str(path), line=number) from None
        chars.append(text.strip("\n").strip("\r\n"))
    if use_space_char:
        chars.append(" ")
    return chars


def program_file(model_dir: Path) -> Optional[Path]:
    for name in PROGRAM_FILES:
        if (model_dir / name).is_file():
            return model_dir / name
    return None


def read_model_info(model_dir: Path) -> Dict[str, Any]:
    """Read and sanity-check ``MODEL_DIR/model.json``; UserError naming what is missing."""
    model_dir = Path(model_dir)
    fix = "point --model at a folder written by `rectrain export` (it holds model.json)."
    if not model_dir.is_dir():
        raise UserError(f"model folder {model_dir} does not exist.", fix)
    path = model_dir / MODEL_JSON
    if not path.is_file():
        raise UserError(f"{model_dir} has no {MODEL_JSON}: it was not exported by rectrain.", fix)
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"not valid JSON ({exc})", "export the model again.", path=str(path)) from None
    missing = [k for k in ("engine", "dictionary", "algorithm", "rec_image_shape", "use_space_char")
               if k not in info]
    if missing:
        raise DataError(f"missing field(s) {', '.join(missing)}", "export the model again.",
                        path=str(path))
    if program_file(model_dir) is None or not (model_dir / PARAMS_FILE).is_file():
        raise UserError(f"{model_dir} lacks the inference model files ({PARAMS_FILE} and one of "
                        f"{', '.join(PROGRAM_FILES)}).", "export the model again.")
    return info


def dictionary_path(model_dir: Path, info: Dict[str, Any]) -> Optional[Path]:
    name = (info.get("dictionary") or {}).get("file")
    return Path(model_dir) / name if name else None


def check_compatible(model_dir: Path, info: Dict[str, Any], engine: Engine) -> None:
    """Refuse (UserError) a model trained by another engine or whose dictionary file changed."""
    model_dir = Path(model_dir)
    trained = info.get("engine") or {}
    if (trained.get("kind"), trained.get("version")) != (engine.kind, engine.version):
        raise UserError(
            f"{model_dir} was exported by engine {trained.get('kind')} {trained.get('version')}, "
            f"but this environment runs {engine.kind} {engine.version}. Preprocessing and decoding "
            "differ between engine versions, so its predictions could silently drift.",
            f"install the engine it was trained with (pip install "
            f"\"{trained.get('kind')}=={trained.get('version')}\" or --paddleocr-dir to that "
            "checkout), or re-export the checkpoint with this engine.")
    expected = (info.get("dictionary") or {}).get("sha256")
    dict_file = dictionary_path(model_dir, info)
    if dict_file is None:
        return  # the engine's built-in dictionary (no file)
    if not dict_file.is_file():
        raise UserError(f"the model's dictionary {dict_file} is missing.",
                        "export the model again; never edit files inside a model folder.")
    actual = sha256_file(dict_file)
    if actual != expected:
        raise UserError(
            f"the dictionary {dict_file} (sha256 {actual[:12]}…) is not the one the model was "
            f"trained with (sha256 {str(expected)[:12]}…): every class after the first changed "
            "line would be decoded as the wrong character.",
            "restore the original dictionary (export the model again from its checkpoint); to "
            "change characters, retrain or fine-tune with the new dictionary.")
