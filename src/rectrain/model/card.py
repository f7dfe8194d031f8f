"""The model card's data part: which data a model was trained and checked on, as hashes.

``model.json`` ``dataset`` records, for the training config's Train and Eval sets, each label
file's path, SHA-256 and number of samples, and the SHA-256 of the ``manifest.jsonl`` beside the
data when the dataset came through rectrain's S3 transfer (that manifest lists every image's
SHA-256, so it pins the images too). ``sha256`` over all of them names the dataset in one value;
it is left out when a file could not be read (the card then says which).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from rectrain.fsutil import sha256_file

MANIFEST = "manifest.jsonl"


def _find(value: str, bases: List[Path]) -> Optional[Path]:
    path = Path(value).expanduser()
    candidates = [path] if path.is_absolute() else [base / path for base in bases]
    return next((c.resolve() for c in candidates if c.exists()), None)


def _samples(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())


def dataset_card(config: Dict[str, Any], config_path: Path, run_dir: Optional[Path]) -> Dict[str, Any]:
    """``model.json`` ``dataset`` for a training config (see the module docstring)."""
    bases = [Path.cwd(), config_path.parent] + ([run_dir] if run_dir else [])
    card: Dict[str, Any] = {}
    digests: List[List[str]] = []
    complete = True
    for section in ("Train", "Eval"):
        dataset = ((config.get(section) or {}).get("dataset")) or {}
        data_dirs = dataset.get("data_dir")
        data_dirs = data_dirs if isinstance(data_dirs, list) else [data_dirs] if data_dirs else []
        files = []
        for value in dataset.get("label_file_list") or []:
            found = _find(str(value), bases)
            if found is None or not found.is_file():
                files.append({"path": str(value), "missing": True})
                complete = False
                continue
            digest = sha256_file(found)
            files.append({"path": str(found), "sha256": digest, "samples": _samples(found)})
            digests.append([section, "labels", digest])
        manifests = []
        for value in data_dirs:
            folder = _find(str(value), bases)
            if folder is not None and (folder / MANIFEST).is_file():
                digest = sha256_file(folder / MANIFEST)
                manifests.append({"path": str(folder / MANIFEST), "sha256": digest})
                digests.append([section, "manifest", digest])
        card[section.lower()] = {"data_dir": [str(d) for d in data_dirs], "label_files": files,
                                 "manifests": manifests}
    if complete and digests:
        card["sha256"] = hashlib.sha256(json.dumps(digests).encode("utf-8")).hexdigest()
    card["note"] = ("sha256 covers the label files and, where present, the dataset manifests "
                    "(which hold every image's sha256)")
    return card
