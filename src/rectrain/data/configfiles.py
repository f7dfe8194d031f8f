"""The files a training config names: each exists and is what it claims to be.

One implementation for ``rectrain config build``/``config check`` (rectrain.config.checks) and
``rectrain train`` (rectrain.training.preflight), so that ``train`` refuses a config whose
label file is gone, UTF-16 or a detection label file with the same message and exit code (2)
as ``config check``, before the engine starts (where it would be exit 4 with a stack trace).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Iterator, Tuple

from rectrain.data.dictionary import read_dictionary
from rectrain.data.labels import iter_label_file
from rectrain.data.sniff import check_dictionary_file, check_label_file, refuse_bom
from rectrain.errors import ConfigError, DataError
from rectrain.fsutil import special_kind

# rectrain.engine.datasets.LABEL_DATASETS (a sibling layer: not imported here)
_LABEL_DATASETS = (None, "SimpleDataSet", "MultiScaleDataSet", "TextRecDataset", "MSTextRecDataset")


def _walk(node: Any, path: Tuple[Any, ...] = ()) -> Iterator[Tuple[Tuple[Any, ...], Any, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield path + (key,), key, value
            yield from _walk(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, path + (i,))


def refuse_special_images(label_file: str, data_dir: str) -> None:
    """No image the engine will open is a named pipe or a device (one would stop training
    forever at its first epoch): checked by type, never opened."""
    for rec in iter_label_file(label_file):
        for rel in rec.image_paths() if rec.path is not None else []:
            kind = special_kind(os.path.join(data_dir, rel))
            if kind:
                raise DataError(f"the image {rel} is {kind}, not a regular file: the engine would "
                                "wait on it forever.", "replace it with the image file (or remove "
                                "the line).", path=label_file, line=rec.line)


def check_config_files(cfg: Dict[str, Any], *, contents: bool = True) -> None:
    """Every dictionary, data folder, label file and weights file ``cfg`` names exists; with
    ``contents``, label files and dictionaries are also sniffed (UTF-16/32, binary, BOM,
    detection labels, YAML/JSON, empty). Raises ConfigError/DataError (exit 2)."""
    seen = set()
    for path, key, value in _walk(cfg):
        if key != "character_dict_path" or not value:
            continue
        field = ".".join(str(p) for p in path)
        if not Path(str(value)).is_file():
            raise ConfigError(f"{field}: {value} does not exist.",
                              "pass --dict FILE, or fix the path with --set.")
        if contents and str(value) not in seen:
            seen.add(str(value))
            check_dictionary_file(str(value))
            refuse_bom(str(value), what="dictionary")
            read_dictionary(str(value))  # invisible characters: an error (rectrain.data.text)
    for mode in ("Train", "Eval"):
        ds = ((cfg.get(mode) or {}).get("dataset")) or {}
        if ds.get("data_dir") and not Path(str(ds["data_dir"])).is_dir():
            raise ConfigError(f"{mode}.dataset.data_dir: {ds['data_dir']} does not exist.",
                              "pass --images-root DIR or fix it with --set.")
        files = ds.get("label_file_list") or []
        for f in [files] if isinstance(files, str) else files:
            if not Path(str(f)).is_file():
                raise ConfigError(f"{mode}.dataset.label_file_list: {f} does not exist.",
                                  "pass existing label files.")
            if contents and ds.get("name") in _LABEL_DATASETS and ds.get("delimiter", "\t") == "\t":
                what = f"{mode}.dataset.label_file_list file"
                check_label_file(str(f), what=what)
                refuse_bom(str(f), what=what)
                refuse_special_images(str(f), str(ds.get("data_dir") or Path(str(f)).parent))
    g = cfg.get("Global") or {}
    for key in ("pretrained_model", "checkpoints"):
        cur = g.get(key)
        if cur and not str(cur).startswith(("http://", "https://")):
            p = str(cur)
            if not (Path(p).is_file() or Path(p + ".pdparams").is_file()):
                raise ConfigError(f"Global.{key}: {cur} (.pdparams) does not exist.",
                                  "pass an existing weights file with --pretrained.")
