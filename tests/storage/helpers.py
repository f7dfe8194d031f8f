"""Small helpers shared by the storage tests."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Dict


def make_tree(root: Path, files: int = 24, size: int = 700, seed: int = 0) -> Dict[str, bytes]:
    """A small dataset-like tree with Thai names, nested folders and an empty folder."""
    rng = __import__("random").Random(seed)
    out: Dict[str, bytes] = {}
    for i in range(files):
        sub = ["images", "images/ชุดที่1", "images/deep/er"][i % 3]
        rel = f"{sub}/img_{i:03d}.png" if i % 5 else f"{sub}/ภาพ_{i:03d}.png"
        data = bytes(rng.getrandbits(8) for _ in range(size + i))
        out[rel] = data
    out["train.txt"] = "\n".join(f"{k}\tสวัสดี{i}" for i, k in enumerate(sorted(out))).encode()
    out["dict.txt"] = "ส\nว\nั\nด\nี\n".encode()
    for rel, data in out.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "empty_dir").mkdir(parents=True, exist_ok=True)
    return out


def tree_digest(root: Path) -> Dict[str, str]:
    """{relative path: sha256} of every file, plus empty folders as '<dir>'."""
    out: Dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        if not dirnames and not filenames and rel_dir != ".":
            out[rel_dir] = "<dir>"
        for name in filenames:
            path = Path(dirpath) / name
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out
