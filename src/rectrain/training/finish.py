"""A run, step 3 of 3: the finish (see :mod:`.runner`). Each way a run can end is one arm that
writes its own result:

- **interrupted** (a signal): the state saved, what is new uploaded within
  ``RECTRAIN_INTERRUPT_UPLOAD_S`` (SageMaker gives two minutes), exit 75;
- **failed** (the engine's exit, or a failure seen in its output): classified, written to
  ``problem-log.md``, :class:`EngineFailure` (exit 4) with the fix;
- **completed** or **stopped** (a stop rule): the curves drawn, every checkpoint uploaded, or
  :class:`CheckpointsNotUploaded` (exit 5) naming what did not reach S3 and the command that
  uploads it; a resume with nothing left to train (:func:`finish_untrained`) ends the same way.
"""

from __future__ import annotations

from typing import Callable, Optional

from rectrain.checkpoints.sync import CheckpointSync
from rectrain.errors import EXIT_INTERRUPTED, EXIT_OK, CheckpointsNotUploaded, EngineFailure
from rectrain.logs import get_logger
from rectrain.runlog.plots import plot_curves
from rectrain.settings import Settings
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import S3Service
from rectrain.training.checkpoint_lookup import checkpoint_paths, push_command
from rectrain.training.failures import Failure, append_problem_log
from rectrain.training.prepare import Prepared
from rectrain.training.request import TrainRequest, TrainResult
from rectrain.training.resume import mirror_run_files
from rectrain.training.session import Outcome
from rectrain.training.supervise import Stopper

log = get_logger("training")
FINAL_UPLOAD_S = 600.0  # at least this long for the last uploads of a run that ended by itself


def finish(prepared: Prepared, outcome: Outcome, stopper: Stopper, s3: Optional[S3Service],
           settings: Settings) -> TrainResult:
    """The run's result (or its error), after the state, the run files and the uploads."""
    prepared.state.global_step = max(prepared.state.global_step, outcome.tracker.global_step)
    result = _result(prepared, outcome)
    if stopper.reason == "interrupted":
        return _interrupted(prepared, outcome, result, stopper, s3, settings)
    failure = outcome.failure
    if failure is None and stopper.reason != "stopped":
        rc = outcome.returncode if outcome.returncode is not None else 1
        failure = outcome.classifier.classify(rc, oom=outcome.oom.evidence([outcome.engine_pid]))
    if failure is not None:
        _failed(prepared, outcome, failure, settings)
    return _completed(prepared, outcome, result, stopper, s3, settings)


def _result(prepared: Prepared, outcome: Outcome) -> TrainResult:
    """A completed-run result with where the best and latest checkpoints are."""
    tracker, run = outcome.tracker, prepared.run
    result = TrainResult(status="completed", exit_code=EXIT_OK, run_dir=run,
                         checkpoint_dir=prepared.ckdir, global_step=tracker.global_step,
                         epoch=tracker.last_train.get("epoch", 0) if tracker.last_train else 0,
                         metrics_path=run / "metrics.jsonl", plan=prepared.plan,
                         run_id=prepared.state.run_id)
    checkpoint_paths(result, prepared.ckdir)
    return result


def _save_state(prepared: Prepared, status: str) -> None:
    prepared.state.status = status
    prepared.state.save(prepared.state_path)
    mirror_run_files(prepared.run, prepared.ckdir, prepared.request.placement.node_rank)


def _interrupted(prepared: Prepared, outcome: Outcome, result: TrainResult, stopper: Stopper,
                 s3: Optional[S3Service], settings: Settings) -> TrainResult:
    result.status, result.exit_code = "interrupted", EXIT_INTERRUPTED
    _save_state(prepared, "interrupted")
    grace = settings.interrupt_upload_s
    sync = outcome.sync
    outcome.display.message(f"interrupted by signal {stopper.signum}; uploading what is new "
                            f"(at most {grace:.0f} s)")
    # only in a SageMaker job can an outside sync (its agent) still be copying the folder; on any
    # other machine nothing copies it, so every snapshot already copied is complete and sealed now
    # (a stop that tore the engine's save of step N then resumes from the copy of step N-1)
    if not sync.close(timeout=grace, stopping=settings.sagemaker_job is not None):
        log.warning("uploads did not finish within %.0f s; the previous complete checkpoint "
                    "stays valid in S3", grace)
    if sync.missing():
        log.warning("not in S3: %s; --resume on this machine uses the local copies, or "
                    "upload them with %s", ", ".join(sync.missing()),
                    push_command(prepared.ckdir, prepared.request.checkpoint_s3, s3))
    for problem in sync.failed_snapshots():
        log.warning("%s; --resume continues from the engine's own files or the newest snapshot",
                    problem)
    result.uploaded_keys = list(sync.uploaded_keys)
    checkpoint_paths(result, prepared.ckdir)  # the snapshots are all complete now
    assert prepared.tracking is not None
    prepared.tracking.finish("interrupted", [prepared.run / "metrics.jsonl"], timeout=30)
    return result


def _failed(prepared: Prepared, outcome: Outcome, failure: Failure, settings: Settings) -> None:
    """Record the failure (state, problem log, trackers, what is new uploaded), then raise it.
    On a full disk each record is tried and may fail: the message is rectrain's either way, and
    the run's state stays one that ``--resume`` continues."""
    run = prepared.run

    def attempt(what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except OSError as exc:
            if failure.kind != "disk_full":
                raise
            log.warning("could not write %s (%s)", what, exc.strerror or exc)

    prepared.state.status = "failed"
    attempt("run-state.json", lambda: prepared.state.save(prepared.state_path))
    attempt("problem-log.md", lambda: append_problem_log(
        run / "problem-log.md", failure, context=f"segment {prepared.segment}, step "
        f"{outcome.tracker.global_step}, engine exit status {outcome.returncode}"))
    assert prepared.tracking is not None
    tracking = prepared.tracking
    attempt("the trackers' last records", lambda: tracking.finish(
        "failed", [run / "metrics.jsonl", run / "problem-log.md", run / "train.log"]))
    attempt("the run's mirror", lambda: mirror_run_files(run, prepared.ckdir,
                                                         prepared.request.placement.node_rank))
    outcome.sync.close(timeout=settings.interrupt_upload_s)
    raise EngineFailure(f"training failed: {failure.message} (see {run / 'train.log'}; "
                        f"last engine line: {failure.evidence.strip()[:200]})",
                        failure.fix, kind=failure.kind)


def _completed(prepared: Prepared, outcome: Outcome, result: TrainResult, stopper: Stopper,
               s3: Optional[S3Service], settings: Settings) -> TrainResult:
    run, sync = prepared.run, outcome.sync
    for warning in outcome.classifier.warnings:
        append_problem_log(run / "problem-log.md", warning, context=f"segment {prepared.segment}")
    if stopper.reason == "stopped":
        result.status = "stopped"
    _save_state(prepared, "completed" if result.status == "completed" else result.status)
    try:
        plot_curves(run / "metrics.jsonl", run / "curves.png")
    except Exception as exc:  # noqa: BLE001 - a plot never fails a finished run
        log.warning("could not draw curves.png: %s", exc)
    assert prepared.tracking is not None
    prepared.tracking.finish(result.status,
                             [run / "curves.png", run / "metrics.jsonl", run / "problem-log.md"])
    _all_in_s3(result, sync, prepared.request.checkpoint_s3, s3, settings)
    return result


def finish_untrained(request: TrainRequest, result: TrainResult, s3: Optional[S3Service],
                     settings: Settings) -> TrainResult:
    """A resume with nothing left to train (the engine not started): exit 0 still means S3
    holds the run's newest checkpoints, which this machine may alone have (the resume's
    snapshot of the engine's own files, an upload an earlier attempt never finished)."""
    if request.checkpoint_s3 is not None and request.placement.uploads:
        sync = CheckpointSync(result.checkpoint_dir, result.run_dir, s3_prefix=request.checkpoint_s3,
                              s3=s3, run_id=result.run_id, seal_after_s=settings.seal_after_s)
        _all_in_s3(result, sync, request.checkpoint_s3, s3, settings)
    return result


def _all_in_s3(result: TrainResult, sync: CheckpointSync, prefix: Optional[S3Uri],
               s3: Optional[S3Service], settings: Settings) -> None:
    """The last uploads of a run that ended by itself; :class:`CheckpointsNotUploaded` (exit 5)
    naming what S3 lacks (a checkpoint not snapshotted, or not uploaded) and the fix."""
    ckdir = result.checkpoint_dir
    sync.close(timeout=max(settings.interrupt_upload_s, FINAL_UPLOAD_S))
    result.uploaded_keys = list(sync.uploaded_keys)
    checkpoint_paths(result, ckdir)  # the snapshots are all complete now
    missing = sync.missing()
    failed = sync.failed_snapshots()
    if failed:  # the engine's files are there; the verified copy (and S3's) is not
        raise CheckpointsNotUploaded(
            f"training {result.status} at step {result.global_step}, but {len(failed)} checkpoint(s) "
            f"could not be snapshotted: {'; '.join(failed)}"
            + (f"; not in S3 either: {', '.join(missing)}" if missing else "") + ".",
            f"make {ckdir / 'snapshots'} writable (free space on its disk), then "
            + (f"upload them with {push_command(ckdir, prefix, s3)} (it snapshots the engine's "
               "files first)." if prefix is not None else
               "rerun with --resume (it snapshots and verifies the engine's own files)."))
    if missing:  # everything is saved locally; S3, the system of record, lacks the end
        cause = sync.checkpoint_errors[-1] if sync.checkpoint_errors else "not finished in time"
        raise CheckpointsNotUploaded(
            f"training {result.status} at step {result.global_step} and everything is saved in "
            f"{ckdir}, but {len(missing)} checkpoint(s) did not reach S3: {', '.join(missing)} "
            f"(last error: {cause}).",
            f"fix the cause (`rectrain s3 check {prefix}`), then upload them with "
            f"{push_command(ckdir, prefix, s3)}.")
    if sync.errors:
        log.warning("some uploads failed: %s", "; ".join(sync.errors[:3]))
