"""Reproducible train/val split, optionally keeping groups (page, font, writer) on one side."""

from __future__ import annotations

import os
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Optional, Pattern, Union

from rectrain.data.labels import iter_label_file, iter_labels_reporting
from rectrain.data.sniff import check_label_file
from rectrain.errors import DataError, UserError
from rectrain.fsutil import refuse_special
from rectrain.logs import get_logger
from rectrain.outputs import atomic_open, claim_output_dir

PathLike = Union[str, "os.PathLike[str]"]
log = get_logger("data.split")


def _group(pattern: Optional[Pattern[str]], path: str, line: int) -> str:
    if pattern is None:
        return f"#{line}"
    m = pattern.search(path)
    if m is None:
        return f"path:{path}"
    return m.group(1) if m.groups() else m.group(0)


def split_labels(labels: PathLike, out_dir: PathLike, *, val: float = 0.1, seed: int = 0,
                 group_by: Optional[str] = None) -> Dict[str, Any]:
    """Write ``out_dir/train.txt`` and ``out_dir/val.txt``; returns a summary.

    Groups (regex match on the image path, group 1 if the regex has one; each line its own group
    without ``--group-by``) are shuffled with ``seed`` and moved to val until it holds
    ``round(val * samples)`` samples. Same input + seed -> same split. Image paths are written
    unchanged: they stay relative to the source label file's images root.
    """
    if not 0.0 < val < 1.0:
        raise UserError(f"--val must be between 0 and 1 (a fraction), got {val}.", "e.g. --val 0.1.")
    src = Path(labels)
    refuse_special(src, what="label file")
    if not src.is_file():
        raise DataError("label file not found.", "check the path.", path=str(src))
    check_label_file(src)
    out = Path(out_dir)
    claim_output_dir(out, command="data split", writes=["train.txt", "val.txt"], inputs=[("label file", src)],
                     create=False)
    pattern: Optional[Pattern[str]] = None
    if group_by:
        try:
            pattern = re.compile(group_by)
        except re.error as exc:
            raise UserError(f"--group-by is not a valid regular expression: {exc}.",
                            r"e.g. --group-by '^([^/]+)/' (first folder) or '(page\d+)'.") from None
    sizes: Counter = Counter()
    skipped = 0
    unmatched = 0
    for rec in iter_labels_reporting(src):
        if rec.path is None or rec.label is None:
            skipped += 1 if not any(c == "blank-line" for c, _ in rec.issues) else 0
            continue
        g = _group(pattern, rec.path, rec.line)
        if pattern is not None and g.startswith("path:"):
            unmatched += 1
        sizes[g] += 1
    total = sum(sizes.values())
    if len(sizes) < 2:
        raise DataError(f"only {len(sizes)} group(s) of samples: nothing to split.",
                        "check --group-by, or add data.", path=str(src))
    groups = sorted(sizes)
    random.Random(seed).shuffle(groups)
    target = max(1, round(val * total))
    val_groups: set = set()
    n_val = 0
    for g in groups:
        if n_val >= target:
            break
        if len(val_groups) == len(groups) - 1:
            break  # keep at least one group for training
        val_groups.add(g)
        n_val += sizes[g]
    claim_output_dir(out, command="data split", writes=["train.txt", "val.txt"], inputs=[("label file", src)])
    n_train = 0
    with atomic_open(out / "train.txt") as ftrain, atomic_open(out / "val.txt") as fval:
        for rec in iter_label_file(src):
            if rec.path is None or rec.label is None:
                continue
            line = f"{rec.path}\t{rec.label}\n"
            if _group(pattern, rec.path, rec.line) in val_groups:
                fval.write(line)
            else:
                ftrain.write(line)
                n_train += 1
    if skipped:
        log.warning("%d malformed line(s) left out; run `rectrain data validate %s`.", skipped, src)
    if unmatched:
        log.warning("%d image path(s) did not match --group-by %r; each is its own group.", unmatched,
                    group_by)
    return {
        "train": str(out / "train.txt"), "val": str(out / "val.txt"),
        "train_samples": n_train, "val_samples": n_val, "val_fraction": round(n_val / total, 4),
        "groups": len(sizes), "val_groups": len(val_groups), "skipped_lines": skipped,
        "unmatched_paths": unmatched, "seed": seed,
        "images_root": str(src.resolve().parent),
    }
