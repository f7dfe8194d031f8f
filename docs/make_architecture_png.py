"""Draw docs/architecture.png: the package's layers, as pyproject.toml's import-linter contract
declares them (so the picture cannot drift from what tests/test_architecture.py checks), and
what each package talks to outside Python.

Usage:  venv/bin/python docs/make_architecture_png.py [-o docs/architecture.png]
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, List, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# Which group each layer belongs to (the first package of a layer decides), and its colour.
GROUPS: Dict[str, Tuple[str, str]] = {
    "__main__": ("entry points", "#f3f4f6"),
    "runs": ("features", "#dcfce7"),
    "checkpoints": ("services", "#dbeafe"),
    "data": ("data, engine,\nhost facts", "#e0e7ff"),
    "settings": ("basics", "#fef3c7"),
}
# One line under each package's name: what it owns.
WHAT: Dict[str, str] = {
    "__main__": "python -m rectrain",
    "cli": "one module per command family; settings, S3 service",
    "demo": "the whole loop on embedded defaults",
    "demo_steps": "the demo's fixed-step plan",
    "container": "the in-job program (/opt/ml)",
    "runs": "runs compare",
    "sagemaker": "control plane: request, launch, tune, follow",
    "emulator": "run-local: /opt/ml, checkpoint agent, hosts",
    "monitor": "follow a run",
    "training": "TrainRequest: prepare, session, finish",
    "model": "export, evaluate, predict",
    "config": "presets, builder, checks, head check",
    "doctor": "is this machine ready?",
    "loaderbench": "bench loader",
    "checkpoints": "snapshots, markers, resume points; unpickler",
    "storage": "S3Uri, S3Service, push/pull, shards, server",
    "tracking": "MLflow, TensorBoard (optional)",
    "runlog": "metrics.jsonl, display, curves",
    "data": "labels, dictionaries, validate, synth, split",
    "engine": "find PaddleOCR; its config, log, argv",
    "machine": "GPUs, CPUs, /dev/shm, instance table",
    "settings": "RECTRAIN_*, read once",
    "outputs": "the write gateway: rules + the only writes",
    "yamlfile": "the one strict YAML reader",
    "plotting": "off-screen figures",
    "errors": "user vs internal errors, exit codes",
    "paths": "the /opt/ml layout",
    "fsutil": "atomic primitive, special files, sha256",
    "logs": "loggers; set-up for entry points",
    "redaction": "no secret in logs, state, requests",
    "_version": "__version__",
}
# What a package talks to outside Python, and notes, drawn as extra lines in its box.
OUTSIDE: Dict[str, str] = {
    "sagemaker": "-> SageMaker API, CloudWatch Logs",
    "storage": "-> S3: AWS or embedded SeaweedFS",
    "engine": "-> PaddleOCR tools/*.py",
    "container": "run by SageMaker, or by the emulator",
}
def read_layers(pyproject: Path) -> List[List[str]]:
    """The layers contract's layers, top first, each a list of package names."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        sys.exit("make_architecture_png.py needs Python 3.11+ (tomllib)")
    config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    for contract in config["tool"]["importlinter"]["contracts"]:
        if contract["type"] == "layers":
            return [[name.strip() for name in layer.replace(":", "|").split("|")]
                    for layer in contract["layers"]]
    sys.exit(f"{pyproject}: no layers contract in [tool.importlinter]")


PER_ROW = 5  # boxes per row; a layer with more packages takes several rows


def _rows(layer: List[str]) -> List[List[str]]:
    return [layer[i:i + PER_ROW] for i in range(0, len(layer), PER_ROW)]


def _box(ax: Any, x: float, top: float, w: float, h: float, name: str, colour: str) -> None:
    ax.add_patch(FancyBboxPatch((x, top - h), w, h, boxstyle="round,pad=0.02,rounding_size=0.12",
                                facecolor=colour, edgecolor="#374151", linewidth=1.2))
    ax.text(x + w / 2, top - 0.32, f"rectrain.{name}", ha="center", va="center",
            fontsize=13, weight="bold", family="monospace")
    chars = int(w * 8)  # characters of 12-point text that fit the box
    lines = [(line, "#111827") for line in textwrap.wrap(WHAT.get(name, ""), chars)]
    lines += [(line, "#991b1b") for line in textwrap.wrap(OUTSIDE.get(name, ""), chars)]
    for k, (line, tint) in enumerate(lines):
        ax.text(x + w / 2, top - 0.7 - 0.25 * k, line, ha="center", va="center", fontsize=12,
                color=tint)


def draw(out: Path, layers: List[List[str]]) -> None:
    width, row_h, gap, left = 22.0, 1.7, 0.15, 2.6
    layer_gap = 0.45
    rows = sum(len(_rows(layer)) for layer in layers)
    height = rows * (row_h + gap) + len(layers) * layer_gap
    fig, ax = plt.subplots(figsize=(width, 1.3 + height), dpi=72)
    ax.set_xlim(0, width)
    ax.set_ylim(-0.1, height + 0.9)
    ax.axis("off")
    ax.text(0.1, height + 0.45, "rectrain: the layers. Imports point down or across a layer, never "
            "up and never in a cycle (pyproject.toml, tests/test_architecture.py)", fontsize=16,
            weight="bold", va="center")
    top = height
    for index, layer in enumerate(layers):
        group, colour = GROUPS.get(layer[0], ("", "#ffffff"))
        layer_top = top
        for row in _rows(layer):
            box_w = (width - left - 0.1 - 0.15 * (PER_ROW - 1)) / PER_ROW
            for j, name in enumerate(row):
                _box(ax, left + j * (box_w + 0.15), top, box_w, row_h, name, colour)
            top -= row_h + gap
        ax.text(0.1, (layer_top + top + gap) / 2, group, fontsize=15, weight="bold", va="center",
                color="#374151")
        top -= layer_gap
        if index < len(layers) - 1:
            ax.plot([0.05, width - 0.05], [top + layer_gap / 2 + gap / 2] * 2, color="#9ca3af",
                    linewidth=0.8, linestyle="--")
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=ROOT / "docs" / "architecture.png")
    parser.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    args = parser.parse_args()
    draw(args.out, read_layers(args.pyproject))


if __name__ == "__main__":
    main()
