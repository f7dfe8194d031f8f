"""``<out>.diff.md``: what the builder changed in the base config, and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

from rectrain.config.edit import Change
from rectrain.outputs import write_text

LABELS = {"train_samples": "training samples", "eval_samples": "evaluation samples",
          "longest_label": "longest label (code points)",
          "steps_per_epoch_1card": "steps per epoch on 1 card", "num_classes":
          "dictionary classes (incl. space if use_space_char)", "cpus": "CPUs here"}


def show(value: Any, limit: int = 90) -> str:
    if value is None:
        return "(unset)"
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def render_diff(source: str, out: Path, changes: List[Change], warnings: List[str],
                stats: Dict[str, Any]) -> str:
    lines = [f"# {out.name}: changes to the base config", "",
             f"Base: {source} (copied as it was to `{out.name.rsplit('.', 1)[0]}.base.yml`)", ""]
    facts = [f"{LABELS.get(k, k.replace('_', ' '))}: {v}" for k, v in stats.items()]
    if facts:
        lines += ["Facts: " + "; ".join(facts) + ".", ""]
    lines += ["| field | old | new | why |", "| --- | --- | --- | --- |"]
    for c in changes:
        lines.append(f"| `{c.field}` | {show(c.old)} | {show(c.new)} | "
                     f"{c.why.replace('|', '/')} |")
    if not changes:
        lines.append("| (none) | | | |")
    if warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in warnings]
    return "\n".join(lines) + "\n"


def write_diff(path: Path, source: str, out: Path, changes: List[Change], warnings: List[str],
               stats: Dict[str, Any]) -> None:
    write_text(path, render_diff(source, out, changes, warnings, stats))
