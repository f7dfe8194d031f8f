"""PNG curves of a run: loss, accuracy (train and eval) and learning rate over global steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Union

from rectrain.plotting import finish_axes, save_png, subplots
from rectrain.runlog.records import read_metrics


def continuous(records: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One history across resumes: a later segment replaces the steps an interrupted segment
    had logged after its last checkpoint (the work redone after the resume)."""
    out: List[Dict[str, Any]] = []
    for record in records:
        if record.get("type") == "resume":
            step = record.get("global_step", 0)
            out = [r for r in out if r.get("global_step", 0) <= step
                   and not (r.get("type") == "eval" and r.get("global_step", 0) > step)]
        out.append(record)
    return out


def plot_curves(metrics: Union[str, Path, List[Dict[str, Any]]], out: Union[str, Path]) -> Path:
    records = read_metrics(metrics) if isinstance(metrics, (str, Path)) else metrics
    records = continuous(records)
    train = [r for r in records if r.get("type") == "train"]
    evals = [r for r in records if r.get("type") == "eval"]

    def series(rows: List[Dict[str, Any]], key: str) -> tuple:
        pts = [(r["global_step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))
               and not isinstance(r.get(key), bool)]
        return [p[0] for p in pts], [p[1] for p in pts]

    fig, axes = subplots(1, 3, figsize=(15, 4))
    x, y = series(train, "loss")
    axes[0].plot(x, y, label="train loss")
    axes[0].set_title("loss")
    x, y = series(train, "acc")
    axes[1].plot(x, y, label="train acc", alpha=0.6)
    x, y = series(evals, "acc")
    axes[1].plot(x, y, "o-", label="eval acc")
    x, y = series(evals, "norm_edit_dis")
    if x:
        axes[1].plot(x, y, "s--", label="eval norm_edit_dis", alpha=0.7)
    axes[1].set_title("accuracy")
    axes[1].set_ylim(-0.02, 1.02)
    x, y = series(train, "lr")
    axes[2].plot(x, y, label="lr")
    axes[2].set_title("learning rate")
    for resume in (r for r in records if r.get("type") == "resume"):
        for ax in axes:
            ax.axvline(resume.get("global_step", 0), color="grey", linestyle=":", linewidth=1)
    finish_axes(axes)
    return save_png(fig, out)
