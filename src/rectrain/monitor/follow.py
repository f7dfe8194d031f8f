"""Follow a running or finished training run from anywhere: a run folder, a metrics.jsonl or
an ``s3://`` checkpoint prefix (the runner uploads metrics.jsonl and run-state.json beside the
checkpoints). Reads only metrics.jsonl / run-state.json, so it never disturbs the run.

Hook for remote jobs: a source that is neither a path nor ``s3://`` is offered to the job sources
given to :func:`register_job_source`. The SageMaker feature has one
(``rectrain.sagemaker.follow.job_summary``); the entry points plug it in (``rectrain monitor``
and ``rectrain.monitor_recognition_training_progress``), so this module never imports SageMaker.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from rectrain.checkpoints.owner import RunLock
from rectrain.checkpoints.remote import is_not_found
from rectrain.checkpoints.run_state import STATE_FILE
from rectrain.errors import StorageError, UserError
from rectrain.outputs import claim_output_file, record_output
from rectrain.runlog.display import make_display
from rectrain.runlog.plots import continuous, plot_curves
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import S3Service

FINAL_STATES = ("completed", "interrupted", "failed", "stopped")

# ``job_source(source, follow=...)``: a summary dict for a job name it knows, else None.
JobSource = Callable[..., Optional[Dict[str, Any]]]
_JOB_SOURCES: List[JobSource] = []


def register_job_source(job_source: JobSource) -> None:
    """Let :func:`monitor_recognition_training_progress` follow remote jobs by name: for a source
    that is neither a path nor ``s3://``, the first registered ``job_source`` that answers (not
    None) gives the summary. Called by entry points; registering twice is harmless."""
    if job_source not in _JOB_SOURCES:
        _JOB_SOURCES.append(job_source)


def summarize(records: List[Dict[str, Any]], state: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The numbers a person asks for: where the run is and how good it is."""
    records = continuous(records)
    train = [r for r in records if r.get("type") == "train"]
    evals = [r for r in records if r.get("type") == "eval"]
    last = train[-1] if train else {}
    summary: Dict[str, Any] = {
        "status": (state or {}).get("status", "unknown" if not records else "running?"),
        "global_step": max((r.get("global_step", 0) for r in records), default=0),
        "epoch": last.get("epoch"), "epochs": last.get("epochs"),
        "loss": last.get("loss"), "train_acc": last.get("acc"), "lr": last.get("lr"),
        "ips": last.get("ips"), "eta_s": last.get("eta_s"),
        "evals": len(evals), "last_eval_acc": evals[-1].get("acc") if evals else None,
        "last_eval_norm_edit_dis": evals[-1].get("norm_edit_dis") if evals else None,
        "segments": len({r.get("segment", 0) for r in records}) if records else 0,
        "records": len(records),
    }
    if evals:
        def acc(r: Dict[str, Any]) -> float:
            value = r.get("acc")
            return float(value) if isinstance(value, (int, float)) else -1.0

        best = max(evals, key=acc)
        summary["best_eval_acc"] = best.get("acc")
        summary["best_step"] = best.get("global_step")
    if state:
        summary["best_of_run_metric"] = state.get("best_metric")
        summary["sub_epochs"] = state.get("sub_epochs")
    return summary


class RunSource:
    """Reads metrics.jsonl and run-state.json from a folder, a file or S3."""

    def __init__(self, source: str, s3: Optional[S3Service] = None) -> None:
        self.source = source
        self.uri: Optional[S3Uri] = S3Uri.parse(source) if source.startswith("s3://") else None
        self.service = s3
        if self.uri is not None:
            if s3 is None:
                raise ValueError("RunSource: an s3:// source needs the S3 service that reaches it")
            self.metrics_path: Optional[Path] = None
        else:
            p = Path(source)
            if p.is_file():
                self.metrics_path, self.state_path = p, p.parent / STATE_FILE
            elif p.is_dir():
                self.metrics_path, self.state_path = p / "metrics.jsonl", p / STATE_FILE
            else:
                raise UserError(f"{source}: no such run folder or metrics file.",
                                "give the --run-dir of `rectrain train`, or the s3:// prefix given "
                                "as --checkpoint-s3.")

    def _s3_get(self, name: str) -> Optional[bytes]:
        assert self.uri is not None and self.service is not None
        try:
            return self.service.read_bytes(self.uri.join(name))
        except StorageError as exc:
            if is_not_found(exc):
                return None  # not there (yet): the run has not uploaded it
            # AccessDenied, bad credentials, an unreachable endpoint: say so, never poll forever
            raise

    def abandoned(self, state: Optional[Dict[str, Any]]) -> bool:
        """A local run whose state says running while no process holds its run lock."""
        if self.uri is not None or (state or {}).get("status") != "running":
            return False
        return RunLock.held(self.state_path.parent) is False

    def read(self) -> Tuple[List[Dict[str, Any]], Optional[Dict[str, Any]]]:
        if self.uri is not None:
            raw = self._s3_get("metrics.jsonl") or b""
            state_raw = self._s3_get(STATE_FILE)
            lines = raw.decode("utf-8", errors="replace").splitlines()
        else:
            assert self.metrics_path is not None
            lines = (self.metrics_path.read_text(encoding="utf-8", errors="replace").splitlines()
                     if self.metrics_path.is_file() else [])
            state_raw = self.state_path.read_bytes() if self.state_path.is_file() else None
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a line being written
        state = None
        if state_raw:
            try:
                state = json.loads(state_raw.decode("utf-8"))
            except ValueError:
                state = None
        return records, state


def monitor_recognition_training_progress(
    source: Union[str, Path], *, follow: bool = False, plot: Optional[Union[str, Path]] = None,
    endpoint_url: Optional[str] = None, display: str = "rich", poll_s: float = 2.0,
    timeout_s: Optional[float] = None,
    on_record: Optional[Callable[[Dict[str, Any]], None]] = None,
    s3: Optional[S3Service] = None,
) -> Dict[str, Any]:
    """Summary dict of a run (see :func:`summarize`); with ``follow`` shows new records live
    until the run ends (run-state.json says completed/interrupted/failed) or ``timeout_s``;
    ``plot`` writes the loss/accuracy/lr curves as PNG."""
    text = str(source)
    if plot is not None:
        own = [] if text.startswith("s3://") else [text]
        claim_output_file(plot, command="monitor", flag="--plot", kind="png", own=own)
    if not text.startswith("s3://") and not Path(text).exists():
        for job_source in _JOB_SOURCES:
            job = job_source(text, follow=follow)
            if job is not None:
                return job
    src = RunSource(text, (s3 or S3Service(endpoint_url)) if text.startswith("s3://") else None)
    records, state = src.read()
    if follow:
        disp = make_display(display)
        disp.start(f"rectrain monitor  {text}", {"sub_epochs": (state or {}).get("sub_epochs", 1)})
        for record in records:
            disp.record(record)
        seen = len(records)
        start = time.monotonic()
        try:
            while (state or {}).get("status") not in FINAL_STATES:
                if timeout_s is not None and time.monotonic() - start > timeout_s:
                    break
                time.sleep(poll_s)
                records, state = src.read()
                for record in records[seen:]:
                    disp.record(record)
                    if on_record:
                        on_record(record)
                seen = max(seen, len(records))
                if src.abandoned(state):
                    disp.message("the run says it is running, but no process holds its run folder "
                                 "(killed?): stopped following. Fix: `rectrain train --resume` continues it.")
                    break
        except KeyboardInterrupt:
            pass
        finally:
            disp.stop()
    summary = summarize(records, state)
    summary["source"] = text
    if plot:
        out = Path(plot)
        if records:
            plot_curves(records, out)
            record_output(out, command="monitor")
            summary["plot"] = str(out)
    return summary
