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
from typing import Dict, List, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# Which group each layer belongs to (the first package of a layer decides), and its colour.
GROUPS: Dict[str, Tuple[str, str]] = {
    "__main__": ("entry points", "#f3f4f6"), "cli": ("entry points", "#f3f4f6"),
    "demo": ("entry points", "#f3f4f6"),
    "runs": ("features", "#dcfce7"), "sagemaker": ("features", "#dcfce7"),
    "training": ("features", "#dcfce7"),
    "checkpoints": ("foundations", "#dbeafe"), "storage": ("foundations", "#dbeafe"),
    "errors": ("basics", "#fef3c7"),
}
# One line under each package's name: what it owns.
WHAT: Dict[str, str] = {
    "__main__": "python -m rectrain",
    "cli": "one module per command family; sets up logging",
    "demo": "the whole loop on embedded defaults",
    "demo_steps": "the demo's fixed-step plan",
    "runs": "runs compare: folders, S3 prefixes, SageMaker jobs",
    "sagemaker": "job request, follow, run-local; entrypoint",
    "monitor": "metrics.jsonl -> summary, curves",
    "training": "runner: engine process, metrics, resume",
    "model": "export, evaluate, predict, model.json",
    "config": "preset/YAML -> config.yml, checks",
    "doctor": "is this machine ready?",
    "checkpoints": "verified snapshots, markers, resume points, S3",
    "tracking": "MLflow, TensorBoard (optional)",
    "outputs": "never write over an input; --force only over ours",
    "storage": "S3 client, push/pull, shards, manifest, server",
    "data": "labels, dictionaries, validate, synth, split",
    "engine": "find PaddleOCR, its argv as data",
    "gpu": "NVML / Paddle build queries",
    "errors": "user vs internal errors, exit codes",
    "paths": "the /opt/ml layout",
    "fsutil": "atomic writes, sha256, sizes",
    "logs": "loggers; set-up for entry points",
    "_version": "__version__",
    "plotting": "off-screen figures",
}
# What a package talks to outside Python, and notes, drawn as extra lines in its box.
OUTSIDE: Dict[str, str] = {
    "sagemaker": "-> SageMaker API, CloudWatch Logs (boto3)",
    "storage": "-> S3: AWS or embedded SeaweedFS (boto3)",
    "engine": "-> PaddleOCR tools/*.py (subprocess)",
}
NOTES: Dict[str, str] = {
    "sagemaker": "sagemaker.entrypoint is a program (the container's); only the CLI imports it",
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


def draw(out: Path, layers: List[List[str]]) -> None:
    width, row_h, gap, left = 22.0, 1.6, 0.25, 2.6
    height = len(layers) * (row_h + gap)
    fig, ax = plt.subplots(figsize=(width, 1.3 + height), dpi=72)
    ax.set_xlim(0, width)
    ax.set_ylim(-0.1, height + 0.9)
    ax.axis("off")
    ax.text(0.1, height + 0.45, "rectrain: the layers. Imports point down only; packages side by side "
            "do not import one another (pyproject.toml, tests/test_architecture.py)", fontsize=16,
            weight="bold", va="center")
    group, colour, group_top = "", "#ffffff", height

    def close_group(bottom: float, line: bool = True) -> None:
        if group:
            ax.text(0.1, (group_top + bottom) / 2, group, fontsize=15, weight="bold", va="center",
                    color="#374151")
        if group and line:
            ax.plot([0.05, width - 0.05], [bottom] * 2, color="#9ca3af", linewidth=0.8,
                    linestyle="--")

    for i, layer in enumerate(layers):
        top = height - i * (row_h + gap)
        y = top - row_h
        new_group = GROUPS.get(layer[0])
        if new_group and new_group[0] != group:
            close_group(top + gap / 2)
            group, colour = new_group
            group_top = top
        box_w = (width - left - 0.1 - 0.15 * (len(layer) - 1)) / len(layer)
        chars = int(box_w * 8)  # characters of 12-point text that fit the box
        for j, name in enumerate(layer):
            x = left + j * (box_w + 0.15)
            ax.add_patch(FancyBboxPatch((x, y), box_w, row_h, boxstyle="round,pad=0.02,rounding_size=0.12",
                                        facecolor=colour, edgecolor="#374151", linewidth=1.2))
            ax.text(x + box_w / 2, top - 0.32, f"rectrain.{name}", ha="center", va="center",
                    fontsize=13, weight="bold", family="monospace")
            lines = [(line, "#111827", "normal") for line in textwrap.wrap(WHAT.get(name, ""), chars)]
            lines += [(line, "#991b1b", "normal") for line in textwrap.wrap(OUTSIDE.get(name, ""), chars)]
            lines += [(line, "#166534", "italic") for line in textwrap.wrap(NOTES.get(name, ""), chars)]
            for k, (line, tint, style) in enumerate(lines):
                ax.text(x + box_w / 2, top - 0.7 - 0.25 * k, line, ha="center", va="center",
                        fontsize=12, color=tint, style=style)
    close_group(gap, line=False)
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
