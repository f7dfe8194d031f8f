"""Several training label files with sampling ratios: the engine's ``Train.dataset.ratio_list``.

PaddleOCR's ``SimpleDataSet`` (ppocr/data/simple_dataset.py) takes, for label file i, a random
``round(lines_i * ratio_i)`` of its lines, drawn again every epoch when a ratio is below 1.
So a ratio is the share *of that file* used per epoch, not a share of the mix: to mix 1,000 own
samples with 100,000 general ones at about 1:1, pass ``--ratio 1,0.01``.
"""

from __future__ import annotations

from typing import List, Sequence, Union

from rectrain.errors import ConfigError


def parse_ratio(text: Union[str, Sequence[float], None]) -> List[float]:
    """``"0.7,0.3"`` -> ``[0.7, 0.3]`` (a list passes through)."""
    if text is None:
        return []
    if not isinstance(text, str):
        return [float(v) for v in text]
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--ratio {text!r}: expected numbers separated by commas.",
                          "write e.g. --ratio 1,0.3 (one value per --train-labels file).") from None


def check_ratio(ratio: Union[str, Sequence[float]], files: Sequence[str]) -> List[float]:
    values = parse_ratio(ratio)
    if len(values) != len(files):
        raise ConfigError(
            f"--ratio has {len(values)} value(s) for {len(files)} --train-labels file(s); the "
            "engine needs one per file (ratio_list) and stops at start otherwise.",
            f"pass {len(files)} comma-separated values, e.g. --ratio "
            f"{','.join(['1'] * len(files))}.")
    for v, f in zip(values, files):
        if not 0 < v <= 1:
            raise ConfigError(
                f"--ratio {v:g} for {f}: the engine samples that share of the file's lines per "
                "epoch, so it must be in (0, 1] (it cannot repeat a file).",
                "lower the other files' ratios instead, or list a small file twice in "
                "--train-labels to weigh it more.")
        n = _count_lines(f)
        if n and round(n * v) == 0:
            need = (1 / n) * 0.5
            raise ConfigError(
                f"--ratio {v:g} for {f}: the engine draws round({n} x {v:g}) = 0 of its {n} lines per "
                "epoch, so the file would never be trained on.",
                f"raise its ratio above {need:.3g} (e.g. --ratio with {min(1.0, 1 / n):.3g} or more for "
                "it), or leave the file out.")
    return values


def _count_lines(path: str) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(1 for _ in fh)
    except OSError:
        return 0


def per_epoch(ratio: Union[str, Sequence[float]], files: Sequence[str]) -> int:
    """Samples per epoch as the engine draws them."""
    total = 0
    for v, f in zip(parse_ratio(ratio), files):
        total += int(round(_count_lines(f) * v))
    return total
