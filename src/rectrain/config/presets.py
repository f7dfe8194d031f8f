"""Our presets: recognition configs written from the facts of the official PaddleOCR ones.

Each preset is a YAML file in ``rectrain/config/presets/`` (package data) plus the facts a
user needs to pick one. ``resolve_base`` turns ``--base`` (a preset name or a YAML path) into
the config dict and a description of where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from rectrain.config.knowledge import engine_knowledge
from rectrain.config.modules import check_modules
from rectrain.engine import find_engine
from rectrain.engine.config import load_engine_config, parse_engine_config
from rectrain.errors import ConfigError
from rectrain.fsutil import refuse_special

PRESET_DIR = Path(__file__).resolve().parent / "presets"


@dataclass(frozen=True)
class Preset:
    name: str
    file: str  # file name in PRESET_DIR
    summary: str  # what it is good for
    input_shape: Tuple[int, int, int]  # C, H, W
    algorithm: str
    backbone: str
    neck: str
    head: str
    upstream: str  # the official config it was written from
    dictionary: str = "any (--dict)"  # which dictionary it needs

    @property
    def path(self) -> Path:
        return PRESET_DIR / self.file

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    def load(self) -> Dict[str, Any]:
        return parse_engine_config(self.text(), f"preset {self.name}").data

    def as_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "summary": self.summary,
                "input_shape": list(self.input_shape), "algorithm": self.algorithm,
                "backbone": self.backbone, "neck": self.neck, "head": self.head,
                "dictionary": self.dictionary, "upstream": self.upstream,
                "file": str(self.path)}


_LIST: List[Preset] = [
    Preset("crnn-mv3", "crnn-mv3.yml",
           "small and fast CRNN: first experiments, demos and CPU training; short single-line "
           "words", (3, 32, 100), "CRNN", "MobileNetV3 large x0.5", "BiLSTM (96)", "CTC",
           "configs/rec/rec_mv3_none_bilstm_ctc.yml (PaddleOCR 2.x)"),
    Preset("svtr-tiny", "svtr-tiny.yml",
           "curved or slanted words (STN rectification), accuracy over speed on short words",
           (3, 64, 256), "SVTR", "SVTRNet tiny (+STN)", "reshape", "CTC",
           "configs/rec/rec_svtrnet.yml"),
    Preset("ppocrv4-mobile", "ppocrv4-mobile.yml",
           "PP-OCRv4 mobile: production text lines, fast inference on CPU/mobile",
           (3, 48, 320), "SVTR_LCNet", "PPLCNetV3 x0.95", "SVTR (in MultiHead)",
           "MultiHead CTC + NRTR", "configs/rec/PP-OCRv4/PP-OCRv4_mobile_rec.yml"),
    Preset("ppocrv5-mobile", "ppocrv5-mobile.yml",
           "PP-OCRv5 mobile: production text lines, fast inference; fine-tune from PP-OCRv5 "
           "weights with the official ppocrv5_dict.txt", (3, 48, 320), "SVTR_LCNet",
           "PPLCNetV3 x0.95", "SVTR (in MultiHead)", "MultiHead CTC + NRTR",
           "configs/rec/PP-OCRv5/PP-OCRv5_mobile_rec.yml"),
    Preset("ppocrv5-server", "ppocrv5-server.yml",
           "PP-OCRv5 server: highest accuracy, heavy; train on GPUs", (3, 48, 320),
           "SVTR_HGNet", "PPHGNetV2_B4 (text_rec)", "SVTR (in MultiHead)",
           "MultiHead CTC + NRTR", "configs/rec/PP-OCRv5/PP-OCRv5_server_rec.yml"),
    Preset("th-ppocrv5-mobile", "th-ppocrv5-mobile.yml",
           "the official Thai PP-OCRv5 mobile model: fine-tune Thai from the official Thai "
           "weights", (3, 48, 320), "SVTR_LCNet", "PPLCNetV3 x0.95", "SVTR (in MultiHead)",
           "MultiHead CTC + NRTR",
           "configs/rec/PP-OCRv5/multi_language/th_PP-OCRv5_mobile_rec.yaml",
           dictionary="the official Thai dictionary ppocrv5_th_dict.txt (not shipped: pass it "
                      "with --dict)"),
]

PRESETS: Dict[str, Preset] = {p.name: p for p in _LIST}


def preset_name(text: str) -> Optional[str]:
    """The preset a name means, forgiving spelling: ``th_PP-OCRv5_mobile_rec``,
    ``TH-PPOCRV5-MOBILE`` and ``th-ppocrv5-mobile`` are the same preset."""
    key = str(text).strip()
    if key in PRESETS:
        return key
    norm = key.lower().replace("_", "-").replace("pp-ocr", "ppocr")
    for suffix in ("-rec", ".yml", ".yaml"):
        if norm.endswith(suffix):
            norm = norm[: -len(suffix)]
    return norm if norm in PRESETS else None


def resolve_base(name_or_path: str) -> Tuple[Dict[str, Any], str]:
    """``(config, source)`` for a preset name or a YAML file path.

    ``source`` is ``"preset:<name>"`` or the file's absolute path.
    """
    key = str(name_or_path).strip()
    path = Path(key).expanduser()
    refuse_special(path, what="base config")
    if not path.is_file() and preset_name(key):
        key = str(preset_name(key))
    if key in PRESETS:
        return PRESETS[key].load(), f"preset:{key}"
    if path.suffix.lower() in (".yml", ".yaml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"--base {key}: no such file.",
                              "check the path, or use a preset: "
                              + ", ".join(PRESETS) + " (`rectrain config presets`).")
        return load_engine_config(path).data, str(path.resolve())
    raise ConfigError(f"--base {key}: not a preset name and not a .yml/.yaml file.",
                      "use one of " + ", ".join(PRESETS)
                      + " (`rectrain config presets`) or the path of a PaddleOCR config.")


def base_text(name_or_path: str) -> str:
    """The base exactly as written (for ``<out>.base.yml``)."""
    key = str(name_or_path).strip()
    if not Path(key).expanduser().is_file() and preset_name(key):
        return PRESETS[str(preset_name(key))].text()
    return Path(key).expanduser().read_text(encoding="utf-8")


def preset_support(preset: Preset, paddleocr_dir: Optional[str] = None) -> Tuple[bool, str]:
    """Whether the selected engine knows every module the preset names: ``(ok, reason)``."""
    try:
        check_modules(preset.load(), engine_knowledge(find_engine(paddleocr_dir)))
    except ConfigError as exc:
        return False, exc.message
    return True, ""
