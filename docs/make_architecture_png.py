"""Draw docs/architecture.png: how data flows from labels to an exported model.

Usage:  venv/bin/python docs/make_architecture_png.py [-o docs/architecture.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

# name -> (x, y, width, height, title, lines, colour); coordinates in a 16 x 9 canvas.
Box = Tuple[float, float, float, float, str, List[str], str]
DATA, STORE, CONF, TRAIN, MODEL, INPUT = "#dbeafe", "#fef3c7", "#ede9fe", "#dcfce7", "#fee2e2", "#f3f4f6"
BOXES: Dict[str, Box] = {
    "labels": (0.2, 6.3, 2.6, 2.2, "your data", ["images + labels.txt", "detection Label.txt",
                                                   "or nothing (synth)"], INPUT),
    "data": (3.4, 6.3, 3.0, 2.2, "rectrain.data", ["synth · convert · dict", "validate · split",
                                                      "report"], DATA),
    "storage": (7.0, 6.3, 2.8, 2.2, "rectrain.storage", ["pack (tar shards)", "push · pull",
                                                            "manifest.jsonl"], STORE),
    "s3": (10.6, 6.3, 2.6, 2.2, "S3", ["datasets/NAME/", "checkpoints/RUN/", "(AWS or embedded)"],
           STORE),
    "config": (0.2, 2.9, 3.0, 2.4, "rectrain.config", ["preset or official YAML", "+ dict, labels",
                                                          "-> config.yml + diff"], CONF),
    "training": (3.9, 2.9, 3.4, 2.4, "rectrain.training", ["runner: GPU check,", "metrics.jsonl,",
                                                              "failures, resume"], TRAIN),
    "engine": (3.9, 0.3, 3.4, 1.8, "rectrain.engine", ["PaddleOCR tools/train.py",
                                                       "(subprocess, unmodified)"], TRAIN),
    "checkpoints": (8.0, 2.9, 3.0, 2.4, "rectrain.checkpoints", ["watch + upload", "_COMPLETE.json last",
                                                                    "best_of_run"], STORE),
    "monitor": (0.2, 0.3, 3.0, 1.8, "rectrain.monitor", ["metrics -> curves.png", "run dir or s3://"], TRAIN),
    "model": (11.8, 2.9, 3.0, 2.4, "rectrain.model", ["export (engine exporter)", "evaluate · predict",
                                                         "model.json"], MODEL),
    "exported": (11.8, 0.3, 3.0, 1.8, "exported model", ["inference.* + dict.txt", "+ model.json"], MODEL),
}

# (from, to, label, side_from, side_to)
ARROWS = [
    ("labels", "data", "", "r", "l"),
    ("data", "storage", "validated", "r", "l"),
    ("storage", "s3", "push", "r", "l"),
    ("s3", "config", "pull + verify", "b", "t"),
    ("config", "training", "config.yml", "r", "l"),
    ("training", "engine", "argv, env", "b", "t"),
    ("engine", "checkpoints", "latest, best_accuracy", "r", "b"),
    ("checkpoints", "s3", "upload", "t", "b"),
    ("training", "monitor", "metrics.jsonl", "bl", "r"),
    ("checkpoints", "model", "best", "r", "l"),
    ("model", "exported", "", "b", "t"),
]


def _anchor(box: Box, side: str) -> Tuple[float, float]:
    x, y, w, h = box[:4]
    return {"l": (x, y + h / 2), "r": (x + w, y + h / 2), "t": (x + w / 2, y + h),
            "b": (x + w / 2, y), "bl": (x + 0.4, y)}[side]


def draw(out: Path) -> None:
    fig, ax = plt.subplots(figsize=(16, 9), dpi=80)
    ax.set_xlim(0, 15.2)
    ax.set_ylim(-0.7, 9)
    ax.axis("off")
    # The SageMaker container runs the same pipeline from "pull" to "export".
    ax.add_patch(FancyBboxPatch((0.05, -0.5), 15.0, 6.05, boxstyle="round,pad=0.02,rounding_size=0.2",
                                fill=False, linestyle="--", edgecolor="#6b7280", linewidth=1.2))
    ax.text(7.55, -0.3, "local run (rectrain train) — or the same steps inside a SageMaker job "
            "(rectrain.sagemaker entrypoint, /opt/ml)", ha="center", fontsize=11, color="#374151",
            style="italic")
    for box in BOXES.values():
        x, y, w, h, title, lines, colour = box
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.15",
                                    facecolor=colour, edgecolor="#374151", linewidth=1.2))
        ax.text(x + w / 2, y + h - 0.38, title, ha="center", va="center", fontsize=13, weight="bold",
                family="monospace" if title.startswith("rectrain") else None)
        for i, line in enumerate(lines):
            ax.text(x + w / 2, y + h - 0.85 - 0.42 * i, line, ha="center", va="center", fontsize=11)
    for src, dst, label, s_side, d_side in ARROWS:
        start, end = _anchor(BOXES[src], s_side), _anchor(BOXES[dst], d_side)
        rad: Optional[float] = 0.0
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=18, linewidth=1.6,
                                     color="#1f2937", connectionstyle=f"arc3,rad={rad}"))
        if label:
            mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
            ax.text(mx, my + 0.15, label, ha="center", va="bottom", fontsize=10, color="#1f2937",
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0})
    ax.text(0.2, 8.6, "rectrain: from labels to an exported recognition model", fontsize=16,
            weight="bold")
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parent / "architecture.png"
    parser.add_argument("-o", "--out", type=Path, default=default)
    draw(parser.parse_args().out)


if __name__ == "__main__":
    main()
