"""``rectrain runs compare A B …``: runs side by side.

Each run is a run folder, an ``s3://`` checkpoint prefix (the runner uploads metrics.jsonl,
run-state.json and config.yml there) or a SageMaker training job name (its hyperparameters,
billable time and cost; its metrics from the job's checkpoint prefix, where the container
mirrors the run files under ``run/``). The comparison holds:

- the config fields that differ between the runs (dotted paths; hyperparameters for jobs);
- the best eval accuracy and its step, the last eval normalized edit distance, the final loss;
- steps, training time (the sum of each attempt's span) and, for SageMaker jobs, the cost;

and :func:`plot_overlay` draws one figure with every run's curves (train loss, eval accuracy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from rectrain.engine.config import parse_engine_config
from rectrain.errors import ConfigError, RectrainError, UserError
from rectrain.monitor.follow import RunSource
from rectrain.outputs import claim_output_dir, claim_output_file, record_output, write_json, write_text
from rectrain.plotting import finish_axes, save_png, subplots
from rectrain.runlog.plots import continuous
from rectrain.sagemaker import aws
from rectrain.sagemaker.follow import describe_job
from rectrain.sagemaker.jobconfig import JOB_NAME_RE
from rectrain.storage.service import S3Service
from rectrain.tracking.params import flatten

MAX_DIFFS = 40


@dataclass
class RunData:
    label: str
    source: str
    kind: str  # folder | s3 | sagemaker-job
    records: List[Dict[str, Any]]
    state: Optional[Dict[str, Any]] = None
    config: Dict[str, Any] = field(default_factory=dict)  # flattened: dotted path -> value
    cost_usd: Optional[float] = None
    job_seconds: Optional[float] = None
    status: Optional[str] = None


def _read_config(text: Optional[str], source: str) -> Dict[str, Any]:
    """The run's config.yml flattened (``{}``: none, or unreadable: the comparison goes on)."""
    if not text:
        return {}
    try:
        return flatten(parse_engine_config(text, source).data)
    except ConfigError:
        return {}


def load_run(source: str, *, s3: S3Service, sagemaker_client: Any = None,
             label: Optional[str] = None, region: Optional[str] = None,
             profile: Optional[str] = None) -> RunData:
    """Read one run from a folder, an s3:// prefix or a SageMaker job name."""
    text = str(source)
    if text.startswith("s3://") or Path(text).exists():
        src = RunSource(text, s3)
        records, state = src.read()
        if src.uri is not None:
            raw = src._s3_get("config.yml")
            config = _read_config(raw.decode("utf-8", errors="replace") if raw else None, text)
            kind = "s3"
        else:
            folder = Path(text) if Path(text).is_dir() else Path(text).parent
            cfg = folder / "config.yml"
            config = _read_config(cfg.read_text(encoding="utf-8") if cfg.is_file() else None, str(cfg))
            kind = "folder"
        if not records:
            raise UserError(f"{text}: no metrics.jsonl records.",
                            "give the --run-dir of `rectrain train` or its --checkpoint-s3 prefix.")
        return RunData(label or _label(text), text, kind, records, state, config,
                       status=(state or {}).get("status"))
    return _load_job(text, s3=s3, client=sagemaker_client, label=label, region=region,
                     profile=profile)


def _label(source: str) -> str:
    return source.rstrip("/").rsplit("/", 1)[-1] or source


def _load_job(name: str, *, s3: S3Service, client: Any, label: Optional[str],
              region: Optional[str] = None, profile: Optional[str] = None) -> RunData:
    if not JOB_NAME_RE.match(name):
        raise UserError(f"{name!r} is not a run folder, an s3:// prefix or a SageMaker job name.",
                        "give run folders (--run-dir of `rectrain train`), s3:// checkpoint prefixes "
                        "or training job names.")

    try:
        if client is None:
            client = aws.client("sagemaker", region, profile)
        status = describe_job(name, client)
    except RectrainError as exc:
        raise UserError(f"{name!r} is not a run folder nor an s3:// prefix, and as a SageMaker job name: "
                        f"{exc.message}", exc.fix) from exc
    records: List[Dict[str, Any]] = []
    state = None
    if status.checkpoint_s3:
        for prefix in (f"{status.checkpoint_s3.rstrip('/')}/run", status.checkpoint_s3):
            records, state = RunSource(prefix, s3).read()
            if records:
                break
    hyper = getattr(status, "hyperparameters", None) or {}
    if not hyper:
        try:
            hyper = client.describe_training_job(TrainingJobName=name).get("HyperParameters") or {}
        except Exception:  # noqa: BLE001 - the comparison still has the metrics
            hyper = {}
    cost = getattr(status, "cost", None)
    return RunData(label or name, name, "sagemaker-job", records, state,
                   {f"hyperparameters.{k}": v for k, v in hyper.items() if not k.startswith("_")},
                   cost_usd=getattr(cost, "cost_usd", None) if cost else None,
                   job_seconds=getattr(status, "billable_seconds", None), status=status.status)


# ------------------------------------------------------------------ numbers
def _num(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def train_seconds(records: Sequence[Dict[str, Any]]) -> Optional[float]:
    """The sum over attempts (segments) of last minus first record time."""
    spans: Dict[int, List[float]] = {}
    for r in records:
        t = _num(r.get("unix_time"))
        if t is not None:
            spans.setdefault(int(r.get("segment", 0) or 0), []).append(t)
    if not spans:
        return None
    return round(sum(max(v) - min(v) for v in spans.values()), 1)


def run_summary(run: RunData) -> Dict[str, Any]:
    records = continuous(run.records)
    train = [r for r in records if r.get("type") == "train"]
    evals = [r for r in records if r.get("type") == "eval" and _num(r.get("acc")) is not None]
    best = max(evals, key=lambda r: float(r["acc"])) if evals else None
    seconds = train_seconds(run.records)
    return {
        "run": run.label, "source": run.source, "kind": run.kind, "status": run.status,
        "steps": max((int(r.get("global_step", 0) or 0) for r in records), default=0),
        "epochs": train[-1].get("epoch") if train else None,
        "best_eval_acc": float(best["acc"]) if best else None,
        "best_step": best.get("global_step") if best else None,
        "last_eval_norm_edit_dis": _num(evals[-1].get("norm_edit_dis")) if evals else None,
        "final_loss": _num(train[-1].get("loss")) if train else None,
        "samples_per_s": _num(train[-1].get("ips")) if train else None,
        "train_seconds": seconds if seconds is not None else run.job_seconds,
        "cost_usd": run.cost_usd,
        "attempts": len({r.get("segment", 0) for r in run.records}),
    }


def config_differences(runs: Sequence[RunData]) -> Dict[str, List[Any]]:
    """``{dotted field: [value in run 1, value in run 2, …]}`` for fields that differ."""
    keys = sorted({k for run in runs for k in run.config})
    diffs: Dict[str, List[Any]] = {}
    for key in keys:
        values = [run.config.get(key) for run in runs]
        texts = {json.dumps(v, sort_keys=True, default=str) for v in values}
        if len(texts) > 1:
            diffs[key] = values
    return diffs


def compare_runs(sources: Sequence[str], *, endpoint_url: Optional[str] = None,
                 sagemaker_client: Any = None, region: Optional[str] = None,
                 profile: Optional[str] = None, s3: Optional[S3Service] = None) -> Dict[str, Any]:
    """Load and compare runs; see the module docstring. Needs two runs or more. S3 prefixes are
    read through ``s3`` (default: a service for ``endpoint_url``)."""
    if len(sources) < 2:
        raise UserError("compare needs at least two runs.", "give two or more run folders, s3:// "
                        "prefixes or SageMaker job names.")
    s3 = s3 or S3Service(endpoint_url)
    runs = [load_run(s, s3=s3, sagemaker_client=sagemaker_client, region=region,
                     profile=profile) for s in sources]
    seen: Dict[str, int] = {}
    for run in runs:  # two folders both named "run": tell them apart
        seen[run.label] = seen.get(run.label, 0) + 1
    for i, run in enumerate(runs):
        if seen[run.label] > 1:
            run.label = f"{i + 1}:{run.label}"
    return {"runs": [run_summary(r) for r in runs], "config_differences": config_differences(runs),
            "_runs": runs}


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else value
    text = text.replace("|", "/")
    return text if len(text) <= 40 else text[:39] + "…"


ROWS = [("status", "status"), ("steps", "steps"), ("epochs", "epochs"),
        ("best eval acc", "best_eval_acc"), ("at step", "best_step"),
        ("last eval norm_edit_dis", "last_eval_norm_edit_dis"), ("final train loss", "final_loss"),
        ("samples/s", "samples_per_s"), ("training time (s)", "train_seconds"),
        ("cost (USD)", "cost_usd"), ("attempts", "attempts")]


def format_comparison(comparison: Dict[str, Any]) -> str:
    """A Markdown table of the results, then one of the config differences."""
    runs = comparison["runs"]
    head = "| | " + " | ".join(_cell(r["run"]) for r in runs) + " |"
    sep = "| --- |" + " --- |" * len(runs)
    lines = ["## Results", "", head, sep]
    for title, key in ROWS:
        lines.append(f"| {title} | " + " | ".join(_cell(r.get(key)) for r in runs) + " |")
    diffs = comparison["config_differences"]
    lines += ["", "## Config differences", ""]
    if not diffs:
        lines.append("(none: the runs used the same config)")
    else:
        lines += [head.replace("| |", "| field |", 1), sep]
        for key, values in list(diffs.items())[:MAX_DIFFS]:
            lines.append(f"| `{key}` | " + " | ".join(_cell(v) for v in values) + " |")
        if len(diffs) > MAX_DIFFS:
            lines.append(f"\n… and {len(diffs) - MAX_DIFFS} more (--json lists them all)")
    return "\n".join(lines) + "\n"


def plot_overlay(runs: Sequence[RunData], out: Union[str, Path]) -> Path:
    """One figure: train loss and eval accuracy over global steps, one colour per run."""

    fig, axes = subplots(1, 2, figsize=(13, 4.5))
    for i, run in enumerate(runs):
        color = f"C{i % 10}"
        records = continuous(run.records)
        pts = [(r["global_step"], r["loss"]) for r in records if r.get("type") == "train"
               and _num(r.get("loss")) is not None]
        if pts:
            axes[0].plot([p[0] for p in pts], [p[1] for p in pts], color=color, label=run.label)
        pts = [(r["global_step"], r["acc"]) for r in records if r.get("type") == "eval"
               and _num(r.get("acc")) is not None]
        if pts:
            axes[1].plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=color, label=run.label)
    axes[0].set_title("train loss")
    axes[1].set_title("eval accuracy")
    axes[1].set_ylim(-0.02, 1.02)
    finish_axes(axes)
    return save_png(fig, out)


COMPARE_FILES = ("compare.md", "compare.json", "compare.png")


def claim_compare_outputs(sources: Sequence[str], *, out_dir: Optional[Union[str, Path]],
                          plot: Optional[Union[str, Path]]) -> None:
    """Before any run is read: ``--out`` is a folder whose compare.* files rectrain wrote (or
    none), ``--plot`` a new file or one rectrain wrote, neither inside a compared run."""
    inputs = [("run", s) for s in sources if not s.startswith("s3://") and Path(s).exists()]
    if out_dir is not None:
        claim_output_dir(out_dir, command="runs compare", flag="--out", writes=list(COMPARE_FILES),
                         inputs=inputs, create=False)
    if plot is not None:
        claim_output_file(plot, command="runs compare", flag="--plot", inputs=inputs, kind="png")


def write_figure(comparison: Dict[str, Any], plot: Union[str, Path]) -> Path:
    """``--plot``: the overlay figure, recorded as rectrain's (a rerun may replace it)."""
    path = plot_overlay(comparison["_runs"], plot)
    record_output(path, command="runs compare")
    return path


def write_comparison(comparison: Dict[str, Any], out_dir: Union[str, Path]) -> Dict[str, Path]:
    """``compare.md`` (the tables and the figure), ``compare.json`` and ``compare.png``."""

    out = claim_output_dir(out_dir, command="runs compare", flag="--out", writes=list(COMPARE_FILES))
    png = plot_overlay(comparison["_runs"], out / "compare.png")
    md = out / "compare.md"
    write_text(md, "# Run comparison\n\n" + format_comparison(comparison)
                      + f"\n## Curves\n\n![curves]({png.name})\n")
    js = out / "compare.json"
    write_json(js, {k: v for k, v in comparison.items() if not k.startswith("_")})
    return {"markdown": md, "json": js, "figure": png}
