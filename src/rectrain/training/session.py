"""A run, step 2 of 3: the engine session (see :mod:`.runner`).

The engine's ``tools/train.py`` runs as a subprocess (:class:`EngineProcess`); every output line
goes to ``train.log``, the live display, the failure classifier and the run log
(:class:`MetricsTracker` -> ``metrics.jsonl``, the trackers); each checkpoint the engine saves
is handed to :class:`CheckpointSync` (a verified snapshot, uploaded in the background); the stop
rules (``--max-seconds``, ``--max-steps``, early stopping, the demo's step count) stop the
engine at a checkpoint. A signal from here on stops the engine the normal way: the finish
(:mod:`.finish`) saves what is new.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

from rectrain.checkpoints.local import ENGINE_NAME_RE, CheckpointInfo
from rectrain.checkpoints.sync import CheckpointSync
from rectrain.outputs import remove_tree
from rectrain.runlog.display import make_display
from rectrain.runlog.records import MetricsTracker, MetricsWriter
from rectrain.settings import Settings
from rectrain.storage.service import S3Service
from rectrain.training.checkpoint_lookup import best_kept
from rectrain.training.early_stop import EarlyStop
from rectrain.training.failures import Failure, FailureClassifier, OomWatch, TracebackHold, disk_full
from rectrain.training.prepare import RESUME_COPY, Prepared
from rectrain.training.resume import mirror_run_files
from rectrain.training.supervise import EngineProcess, Stopper

ITERS_RE = re.compile(r"train dataloader has (\d+) iters")
RUN_FILES_EVERY_S = 60.0  # metrics.jsonl & co. to S3 at least this often while training


@dataclass
class Outcome:
    """How the engine session ended, for the finish."""

    tracker: MetricsTracker
    sync: CheckpointSync
    display: Any  # stopped; its messages still print (the interrupted finish uses it)
    classifier: FailureClassifier
    failure: Optional[Failure]  # a failure seen in the output (the engine was stopped for it)
    returncode: Optional[int]
    engine_pid: int
    oom: OomWatch


class _Session:
    """The engine's output, line by line, into the run log, the display, the checkpoints and
    the stop rules."""

    def __init__(self, prepared: Prepared, s3: Optional[S3Service], settings: Settings,
                 stopper: Stopper) -> None:
        self.p = prepared
        self.request = prepared.request
        self.stopper = stopper
        self.state = prepared.state
        info = prepared.resume_info
        self.display = make_display(self.request.display)
        self.tracker = MetricsTracker(sub_epochs=prepared.plan.sub_epochs, segment=prepared.segment,
                                      global_step=info.global_step if info else 0,
                                      engine_epoch=info.engine_epoch if info else 0)
        self.classifier = FailureClassifier()
        self.tracebacks = TracebackHold()  # a full disk's traceback stays in train.log
        indicator = prepared.cfg.main_indicator
        rules = self.request.stop
        self.early = EarlyStop(rules.early_stop, indicator, best=self.state.best_metric) \
            if rules.early_stop else None
        # the engine saves checkpoints on rank 0 only; other hosts upload nothing
        uploads = self.request.placement.uploads
        self.sync = CheckpointSync(
            prepared.ckdir, prepared.run, s3_prefix=self.request.checkpoint_s3 if uploads else None,
            s3=s3, sub_epochs=prepared.plan.sub_epochs, main_indicator=indicator,
            best_so_far=best_kept(prepared.ckdir, indicator, self.state.best_metric),
            on_best=self._on_best, run_id=self.state.run_id, seal_after_s=settings.seal_after_s)
        self.metrics = MetricsWriter(prepared.run / "metrics.jsonl")
        self.failure: Optional[Failure] = None
        self.budget_spent = False

    def _on_best(self, info: CheckpointInfo) -> None:
        self.state.best_metric = info.metric.get(self.p.cfg.main_indicator)
        self.state.best_global_step = info.global_step
        self.state.best_epoch = info.epoch
        self.state.save(self.p.state_path)

    def start(self) -> None:
        """The resume record (where this attempt restarts: records of earlier attempts after
        this step are work that is redone, plots.continuous() drops them) and the display."""
        p, info = self.p, self.p.resume_info
        if info is not None or p.segment > 0:
            self.metrics.write([self.tracker.stamp({
                "type": "resume", "global_step": info.global_step if info else 0,
                "engine_epoch": info.engine_epoch if info else 0,
                "path": str(p.resume_from) if p.resume_from else None})])
        placement = self.request.placement
        where = placement.device if placement.device == "cpu" else \
            f"gpu {','.join(map(str, placement.gpus or (0,)))}"
        self.display.start(f"rectrain train  {Path(self.request.config).name}  ({where})",
                           {"epochs": p.plan.epochs, "sub_epochs": p.plan.sub_epochs,
                            "engine_epochs": p.plan.engine_epochs,
                            "global_step": self.tracker.global_step, "best_acc": self.state.best_metric})
        for note in p.plan.notes:
            self.display.message(note)
        if self.request.resume:
            self.display.message(
                f"resuming from {p.resume_from} (step {info.global_step}, epoch {info.epoch})" if info
                else "--resume: no checkpoint found (a first attempt); starting from the beginning")

    def line(self, raw: str) -> None:
        """One line of the engine's output. A full disk while rectrain writes (metrics, the
        run's state, a snapshot's marker) stops the run as a failure with rectrain's message;
        the output is still read (the engine must not block on a full pipe)."""
        if self.failure is not None and self.failure.kind == "disk_full":
            return
        try:
            self._line(raw)
        except OSError as exc:
            self.disk_full(exc)

    def disk_full(self, exc: OSError) -> None:
        """Stop the run for a full disk (other OS errors are raised: bugs)."""
        failure = disk_full(exc)
        if failure is None:
            raise exc
        if self.failure is None or self.failure.kind != "disk_full":
            self.failure = failure
            self.stopper.stop("failed")

    def _line(self, raw: str) -> None:
        for shown in self.tracebacks.feed(raw):
            self.display.line(shown)
        iters = ITERS_RE.search(raw)
        if iters:
            self.display.update(total_steps=int(iters.group(1)) * self.p.plan.engine_epochs)
        stop_now = self.classifier.feed(raw)
        if stop_now is not None and self.failure is None:
            self.failure = stop_now
            self.stopper.stop("failed")
        for record in self.tracker.feed(raw):
            self.record(record)

    def record(self, record: Dict[str, Any]) -> None:
        self.metrics.write([record])
        assert self.p.tracking is not None
        self.p.tracking.record(record)
        self.display.record(record)
        if record["type"] == "save" and ENGINE_NAME_RE.match(record.get("name", "")):
            self._saved(record)
        if self.early is not None and self.early.feed(record):
            self.display.message(self.early.message())
            self.stopper.stop("stopped")
        stop_at = self.p.stop_at
        if record["type"] == "train" and stop_at and record["global_step"] >= stop_at:
            self.stopper.stop("stopped")

    def _saved(self, record: Dict[str, Any]) -> None:
        """A checkpoint the engine saved: snapshot and upload it; at ``latest``, mirror the run's
        history and apply the stop rules that end at a checkpoint."""
        self.sync.on_save(record["name"])
        self.state.global_step = record["global_step"]
        self.state.engine_epoch = record["engine_epoch"]
        assert self.p.tracking is not None  # the MLflow run id, once its server answered
        self.state.tracking = {**(self.state.tracking or {}), **self.p.tracking.state}
        self.state.save(self.p.state_path)
        if record["name"] != "latest":
            return
        mirror_run_files(self.p.run, self.p.ckdir, self.request.placement.node_rank)
        rules = self.request.stop
        if self.budget_spent:
            self.display.message(f"--max-seconds {rules.max_seconds:g} reached: stopping after "
                                 f"the checkpoint at step {record['global_step']}")
            self.stopper.stop("stopped")
        if rules.stop_at_step and record["global_step"] >= rules.stop_at_step:
            self.stopper.stop("stopped")  # the demo's fixed step count, checkpointed

    def close(self) -> None:
        for shown in self.tracebacks.end():
            self.display.line(shown)
        last = self.tracker.flush()
        self.metrics.write(last)
        assert self.p.tracking is not None
        self.p.tracking.records(last)


def run_engine(prepared: Prepared, s3: Optional[S3Service], settings: Settings,
               stopper: Stopper) -> Outcome:
    """Run the engine until it ends or is stopped; the outcome for the finish."""
    stopper.raise_early = False  # from here on a signal stops the run the normal way
    session = _Session(prepared, s3, settings, stopper)
    session.start()
    rc: Optional[int] = None
    oom = OomWatch()
    engine_pid = 0
    run, argv = prepared.run, prepared.argv
    try:
        with EngineProcess(argv, prepared.env, stopper, run / "train.log",
                           max_seconds=prepared.request.stop.max_seconds,
                           header=f"\n# rectrain segment {prepared.segment}: {' '.join(argv)}\n") as child:
            engine_pid = child.proc.pid if child.proc is not None else 0
            files_at = time.monotonic()
            for raw_bytes in child.lines():
                if time.monotonic() - files_at > RUN_FILES_EVERY_S:  # `rectrain monitor s3://...`
                    files_at = time.monotonic()
                    session.sync.enqueue("_run_files")
                session.budget_spent = child.budget_spent
                session.line(raw_bytes.decode("utf-8", errors="replace"))
            rc = child.wait()
            if child.log_error is not None:
                session.disk_full(child.log_error)
        try:
            session.close()
        except OSError as exc:
            session.disk_full(exc)
    finally:  # the engine is stopped and train.log closed by now
        try:
            session.metrics.close()
        except OSError as exc:
            session.disk_full(exc)
        session.display.stop()
        _drop_resume_copy(prepared)
    return Outcome(session.tracker, session.sync, session.display, session.classifier, session.failure,
                   rc, engine_pid, oom)


def _drop_resume_copy(prepared: Prepared) -> None:
    """The copy the engine resumed from (``<run>/resume/``), once the engine is gone: the
    checkpoint itself stays in its snapshot folder."""
    copy = prepared.run / RESUME_COPY
    if prepared.resume_from is not None and prepared.resume_from.parent == copy:
        remove_tree(copy, ignore_errors=True)
