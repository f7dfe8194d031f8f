"""``start_recognition_training``: run the engine's tools/train.py as a subprocess, stream
and parse its output, snapshot and upload checkpoints, survive interruptions.

This module is the orchestration; each concern has its own module: ``preflight`` (device and
config checks), ``resume`` (the checkpoint and history to continue from), ``supervise``
(signals, the engine process and its output), ``metrics`` / ``failures`` / ``display`` (what
the output means and shows), ``kept`` (what the run kept, read back), and
``rectrain.checkpoints.sync`` (snapshots and uploads).

Run folder (``run_dir``)::

    train.log        the engine's full output (appended across resumes)
    metrics.jsonl    one JSON record per train/eval/save line (appended, never truncated)
    config.yml       a copy of the config; run-state.json: K, segments, best of the run
    checkpoints/     Global.save_model_dir (or ``checkpoint_dir``): the engine's files,
                     snapshots/s<step>-<name>-<id>/ (immutable verified copies, marker
                     last) and snapshots/<name>.json (latest, best_accuracy, best_of_run, ...)
    problem-log.md   classified failures; curves.png at the end
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from rectrain.checkpoints.local import (
    ENGINE_NAME_RE,
    CheckpointInfo,
)
from rectrain.checkpoints.run_state import STATE_FILE, RunState
from rectrain.checkpoints.sync import CheckpointSync
from rectrain.config.pretrained import check_pretrained_head
from rectrain.engine import find_engine
from rectrain.engine.config import load_engine_config
from rectrain.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    CheckpointsNotUploaded,
    EngineFailure,
    UserError,
)
from rectrain.logs import get_logger
from rectrain.runlog.display import make_display
from rectrain.runlog.plots import plot_curves
from rectrain.runlog.records import MetricsTracker, MetricsWriter
from rectrain.settings import Settings
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import S3Service
from rectrain.training.checkpoint_lookup import best_kept, checkpoint_paths, push_command
from rectrain.training.command import build_train_command
from rectrain.training.early_stop import EarlyStop
from rectrain.training.failures import Failure, FailureClassifier, OomWatch, append_problem_log
from rectrain.training.plan import TrainPlan, make_plan
from rectrain.training.preflight import (
    check_checkpoint_prefix,
    check_device,
    check_train_inputs,
    claim_run_dir,
)
from rectrain.training.resume import (
    Found,
    adopt_run,
    mirror_run_files,
    refuse_to_overwrite,
    restore_run_files,
    resume_point,
    scan_checkpoints,
)
from rectrain.training.resume_check import check_config_change, fingerprint, past_max_steps_message
from rectrain.training.run_tracking import TrackingOptions, open_run_tracking
from rectrain.training.supervise import EngineProcess, Stopper
from rectrain.training.workers import apply_loader_choice

log = get_logger("training")

ITERS_RE = re.compile(r"train dataloader has (\d+) iters")
RUN_FILES_EVERY_S = 60.0  # metrics.jsonl & co. to S3 at least this often while training


@dataclass
class TrainResult:
    status: str  # completed | interrupted | stopped (max_steps / max_seconds); failures raise
    exit_code: int
    run_dir: Path
    checkpoint_dir: Path
    best_checkpoint: Optional[Path] = None  # the engine prefix of best_of_run (else best_accuracy)
    latest_checkpoint: Optional[Path] = None
    global_step: int = 0
    epoch: int = 0
    metrics_path: Optional[Path] = None
    uploaded_keys: List[str] = field(default_factory=list)
    plan: Optional[TrainPlan] = None


def start_recognition_training(
    config: Union[str, Path], run_dir: Union[str, Path], *, device: str = "gpu",
    gpus: Optional[Sequence[int]] = None, checkpoint_s3: Optional[str] = None,
    checkpoint_dir: Optional[Union[str, Path]] = None, resume: bool = False,
    checkpoint_every_min: float = 30.0, endpoint_url: Optional[str] = None,
    paddleocr_dir: Optional[str] = None, nnodes: int = 1, node_rank: int = 0,
    master: Optional[str] = None, display: str = "rich", max_steps: Optional[int] = None,
    sub_epochs: Optional[int] = None, max_seconds: Optional[float] = None,
    tracking: Optional[TrackingOptions] = None,
    early_stop: Optional[int] = None, stop_at_step: Optional[int] = None,
    allow_config_change: bool = False,
    workers: Union[None, int, str] = None, restart: bool = False,
    s3: Optional[S3Service] = None,
) -> TrainResult:
    """Train a recognition model with the PaddleOCR engine; see the module docstring.

    ``max_steps`` ends the run after about N steps (a shortened schedule, see plan.py); a
    resume at or past it trains nothing. A resume whose config changed the schedule or the
    model (training.resume_check) is refused unless ``allow_config_change`` (then logged).
    ``max_seconds`` stops it at the first ``latest`` saved after that many seconds (or, with no
    save in sight, at 1.25x + 120 s): both give status ``stopped``, exit 0.
    ``resume`` continues from the newest complete checkpoint of this run (local or in S3) and
    refuses (exit 2, with the list) when checkpoints exist but none is usable; ``restart``
    starts a new run on purpose where checkpoints already are (without either, that refuses).
    Returns a :class:`TrainResult` (``status`` completed / interrupted (exit 75) / stopped).
    Raises :class:`EngineFailure` (exit 4) with the classified cause when the engine fails,
    :class:`Interrupted` (exit 75) for a signal before the engine started, and user errors for
    bad input before anything runs. SIGTERM/SIGINT handlers are installed for the whole call
    (from the main thread).
    """
    stopper = Stopper()
    stopper.install()
    try:
        return _train(stopper, config, run_dir, device=device, gpus=gpus,
                      checkpoint_s3=checkpoint_s3, checkpoint_dir=checkpoint_dir, resume=resume,
                      checkpoint_every_min=checkpoint_every_min, endpoint_url=endpoint_url,
                      paddleocr_dir=paddleocr_dir, nnodes=nnodes, node_rank=node_rank,
                      master=master, display=display, max_steps=max_steps, sub_epochs=sub_epochs,
                      max_seconds=max_seconds, tracking=tracking,
                      early_stop=early_stop, stop_at_step=stop_at_step,
                      allow_config_change=allow_config_change, workers=workers, restart=restart,
                      s3=s3)
    finally:
        stopper.restore()


def _train(stopper: Stopper, config: Union[str, Path], run_dir: Union[str, Path], *, device: str,
           gpus: Optional[Sequence[int]], checkpoint_s3: Optional[str],
           checkpoint_dir: Optional[Union[str, Path]], resume: bool, checkpoint_every_min: float,
           endpoint_url: Optional[str], paddleocr_dir: Optional[str], nnodes: int, node_rank: int,
           master: Optional[str], display: str, max_steps: Optional[int],
           sub_epochs: Optional[int], max_seconds: Optional[float],
           tracking: Optional[TrackingOptions] = None, early_stop: Optional[int] = None,
           stop_at_step: Optional[int] = None, allow_config_change: bool = False,
           workers: Union[None, int, str] = None, restart: bool = False,
           s3: Optional[S3Service] = None) -> TrainResult:
    settings = Settings.from_env(warn=False)
    INTERRUPT_UPLOAD_S = settings.interrupt_upload_s  # noqa: N806
    if settings.tensorboard_dir and (tracking is None or tracking.tensorboard_dir is None):
        import dataclasses

        tracking = dataclasses.replace(tracking or TrackingOptions(),
                                       tensorboard_dir=settings.tensorboard_dir)
    if resume and restart:
        raise UserError("--resume and --restart exclude each other.",
                        "--resume continues the run; --restart starts a new one: give one.")
    engine = find_engine(paddleocr_dir)
    check_device(device, gpus, engine.python)
    cfg = load_engine_config(config, require=("Global", "Train")).data
    check_train_inputs(cfg)
    if not resume:
        check_pretrained_head(cfg, str(config))
    run = Path(run_dir).expanduser().resolve()
    claim_run_dir(run, config, cfg)
    ckdir = Path(checkpoint_dir).expanduser().resolve() if checkpoint_dir else run / "checkpoints"
    ckdir.mkdir(parents=True, exist_ok=True)
    state_path = run / STATE_FILE
    prefix: Optional[S3Uri] = None
    if checkpoint_s3:
        parsed = S3Uri.parse(checkpoint_s3)
        prefix = S3Uri(parsed.bucket, parsed.key.rstrip("/"))
        s3 = s3 or S3Service(endpoint_url)
        checkpoint_s3 = str(prefix)
        if node_rank == 0:  # the host that uploads: fail before any step is paid for
            check_checkpoint_prefix(s3, prefix)
    if resume:
        restore_run_files(run, ckdir, prefix, s3)
    state = RunState.load(state_path)
    if state is not None and not resume and not restart and state.status not in ("new",):
        raise UserError(f"{run} already holds a run ({state.status}, step {state.global_step}).",
                        "add --resume to continue it, --restart to start over, or choose a new "
                        "--run-dir.")
    found: List[Found] = []
    if not restart:  # what is there decides: continue it, refuse, or (nothing) start
        found = scan_checkpoints(ckdir, prefix, s3=s3,
                                 sub_epochs=state.sub_epochs if state else 1)
    if not resume and not restart:
        refuse_to_overwrite(found)
    if resume and state is None:
        adopted = adopt_run(found)
        if adopted is not None:  # run-state.json lost: the markers say which run this is
            log.warning("run-state.json is missing; continuing run %s (named in the marker of "
                        "%s)", adopted.run_id, adopted.location or adopted.name)
            plan = make_plan(cfg, device=device, gpus=list(gpus or []), nnodes=nnodes,
                             sub_epochs=adopted.sub_epochs or sub_epochs, max_steps=max_steps,
                             checkpoint_every_min=checkpoint_every_min)
            main_indicator = str((cfg.get("Metric") or {}).get("main_indicator", "acc"))
            state = RunState(run_id=adopted.run_id, sub_epochs=plan.sub_epochs, epochs=plan.epochs,
                             engine_epochs=plan.engine_epochs, main_indicator=main_indicator,
                             checkpoint_s3=checkpoint_s3, plan_max_steps=max_steps)

    main_indicator = str((cfg.get("Metric") or {}).get("main_indicator", "acc"))
    if state is not None and resume:
        # the run's own schedule (K and the --max-steps of its first start), never a new one:
        # the engine rebuilds its lr scheduler from it while the scheduler's position comes from
        # the checkpoint, so a different schedule would bend the learning-rate curve (see
        # training.resume_check); --max-steps on a resume only says where to stop
        plan = make_plan(cfg, device=device, gpus=list(gpus or []), nnodes=nnodes,
                         sub_epochs=state.sub_epochs, max_steps=state.plan_max_steps,
                         checkpoint_every_min=checkpoint_every_min)
    else:
        plan = make_plan(cfg, device=device, gpus=list(gpus or []), nnodes=nnodes,
                         checkpoint_every_min=checkpoint_every_min, sub_epochs=sub_epochs,
                         max_steps=max_steps)
        state = RunState(run_id=uuid.uuid4().hex[:12], sub_epochs=plan.sub_epochs, epochs=plan.epochs,
                         engine_epochs=plan.engine_epochs, main_indicator=main_indicator,
                         checkpoint_s3=checkpoint_s3, plan_max_steps=max_steps)
    # where the engine is stopped by rectrain (a plan made for --max-steps ends there itself)
    stop_at = max_steps if max_steps and max_steps != state.plan_max_steps else None
    if max_steps and not resume and "Global.epoch_num" not in plan.overrides:
        stop_at = max_steps

    apply_loader_choice(cfg, plan.overrides, workers, gpus=len(gpus or []) or 1)
    resume_from: Optional[Path] = None
    resume_info: Optional[CheckpointInfo] = None
    if resume:
        # other hosts keep their copy out of the synced checkpoint dir: only rank 0 writes there
        resume_from, resume_info = resume_point(ckdir, prefix,
                                                dest_dir=(ckdir if node_rank == 0 else run) / "resume",
                                                s3=s3, sub_epochs=plan.sub_epochs,
                                                run_id=state.run_id, found=found)
    if resume_info is not None:
        nothing_left = past_max_steps_message(resume_info.global_step, max_steps, state.plan_max_steps)
        if nothing_left:
            log.warning("%s", nothing_left)
            return TrainResult(status="stopped", exit_code=EXIT_OK, run_dir=run, checkpoint_dir=ckdir,
                               global_step=resume_info.global_step, epoch=resume_info.epoch,
                               metrics_path=run / "metrics.jsonl", plan=plan)
        if max_steps:
            log.info("--resume --max-steps %d: continuing the run's schedule from step %d and "
                     "stopping at step %d (the last checkpoint before it is kept).", max_steps,
                     resume_info.global_step, max_steps)
    _check_resume_config(state, cfg, plan, run, config, resume, allow_config_change)

    # the config copy, then the command
    if Path(config).resolve() != run / "config.yml":
        shutil.copyfile(config, run / "config.yml")
    argv, env = build_train_command(
        engine, str(Path(config).resolve()), save_model_dir=str(ckdir), device=device, gpus=gpus,
        resume_from=str(resume_from) if resume_from else None, plan_overrides=plan.overrides,
        nnodes=nnodes, node_rank=node_rank, master=master,
        log_dir=str(run / "launch-logs") if (gpus and len(gpus) > 1) or nnodes > 1 else None)

    state.segments += 1
    state.status = "running"
    segment = state.segments - 1
    state.history.append({"segment": segment, "started": time.time(),
                          "resumed_from": str(resume_from) if resume_from else None,
                          "resume_step": resume_info.global_step if resume_info else 0})
    tracking_run = open_run_tracking(tracking, run, Path(config).resolve(), cfg, engine=engine, device=device,
                                     gpus=gpus, nnodes=nnodes, node_rank=node_rank, plan=plan, state=state,
                                     resume_step=resume_info.global_step if resume_info else 0,
                                     job=settings.sagemaker_job, instance_type=settings.instance_type)
    state.save(state_path)

    stopper.raise_early = False  # from here on a signal stops the run the normal way
    disp = make_display(display)
    tracker = MetricsTracker(sub_epochs=plan.sub_epochs, segment=segment,
                             global_step=resume_info.global_step if resume_info else 0,
                             engine_epoch=resume_info.engine_epoch if resume_info else 0)
    classifier = FailureClassifier()
    early = EarlyStop(early_stop, main_indicator, best=state.best_metric) if early_stop else None

    def on_best(info: CheckpointInfo) -> None:
        state.best_metric = info.metric.get(main_indicator)
        state.best_global_step = info.global_step
        state.best_epoch = info.epoch
        state.save(state_path)

    # the engine saves checkpoints on rank 0 only; other hosts upload nothing
    sync = CheckpointSync(ckdir, run, s3_prefix=prefix if node_rank == 0 else None,
                          s3=s3,
                          sub_epochs=plan.sub_epochs, main_indicator=main_indicator,
                          best_so_far=best_kept(ckdir, main_indicator, state.best_metric),
                          on_best=on_best, run_id=state.run_id, seal_after_s=settings.seal_after_s)
    metrics = MetricsWriter(run / "metrics.jsonl")
    if resume_info is not None or segment > 0:
        # marks where this attempt restarts: records of earlier attempts after this step are
        # work that is redone (plots.continuous() drops them)
        metrics.write([tracker.stamp({
            "type": "resume", "global_step": resume_info.global_step if resume_info else 0,
            "engine_epoch": resume_info.engine_epoch if resume_info else 0,
            "path": str(resume_from) if resume_from else None})])
    where = device if device == "cpu" else f"gpu {','.join(map(str, gpus or [0]))}"
    title = f"rectrain train  {Path(config).name}  ({where})"
    disp.start(title, {"epochs": plan.epochs, "sub_epochs": plan.sub_epochs,
                       "engine_epochs": plan.engine_epochs,
                       "global_step": tracker.global_step,
                       "best_acc": state.best_metric})
    for note in plan.notes:
        disp.message(note)
    if resume:
        disp.message(f"resuming from {resume_from} (step {resume_info.global_step}, epoch "
                     f"{resume_info.epoch})" if resume_info else
                     "--resume: no checkpoint found (a first attempt); starting from the beginning")

    failure: Optional[Failure] = None
    rc: Optional[int] = None
    oom = OomWatch()
    engine_pid = 0
    try:
        with EngineProcess(argv, env, stopper, run / "train.log", max_seconds=max_seconds,
                           header=f"\n# rectrain segment {segment}: {' '.join(argv)}\n") as child:
            engine_pid = child.proc.pid if child.proc is not None else 0
            files_at = time.monotonic()
            for raw_bytes in child.lines():
                if time.monotonic() - files_at > RUN_FILES_EVERY_S:  # `rectrain monitor s3://...`
                    files_at = time.monotonic()
                    sync.enqueue("_run_files")
                raw = raw_bytes.decode("utf-8", errors="replace")
                disp.line(raw)
                iters = ITERS_RE.search(raw)
                if iters:
                    disp.update(total_steps=int(iters.group(1)) * plan.engine_epochs)
                stop_now = classifier.feed(raw)
                if stop_now is not None and failure is None:
                    failure = stop_now
                    stopper.stop("failed")
                for record in tracker.feed(raw):
                    metrics.write([record])
                    tracking_run.record(record)
                    disp.record(record)
                    if record["type"] == "save" and ENGINE_NAME_RE.match(record.get("name", "")):
                        sync.on_save(record["name"])
                        state.global_step = record["global_step"]
                        state.engine_epoch = record["engine_epoch"]
                        state.save(state_path)
                        if record["name"] == "latest":
                            mirror_run_files(run, ckdir, node_rank)
                            if child.budget_spent:
                                disp.message(f"--max-seconds {max_seconds:g} reached: stopping after "
                                             f"the checkpoint at step {record['global_step']}")
                                stopper.stop("stopped")
                            if stop_at_step and record["global_step"] >= stop_at_step:
                                stopper.stop("stopped")  # the demo's fixed step count, checkpointed
                    if early is not None and early.feed(record):
                        disp.message(early.message())
                        stopper.stop("stopped")
                    if record["type"] == "train" and stop_at and record["global_step"] >= stop_at:
                        stopper.stop("stopped")
            rc = child.wait()
        last = tracker.flush()
        metrics.write(last)
        tracking_run.records(last)
    finally:  # the engine is stopped and train.log closed by now
        metrics.close()
        disp.stop()

    state.global_step = max(state.global_step, tracker.global_step)
    result = _result(run, ckdir, tracker, plan)

    if stopper.reason == "interrupted":
        result.status, result.exit_code = "interrupted", EXIT_INTERRUPTED
        state.status = "interrupted"
        state.save(state_path)
        mirror_run_files(run, ckdir, node_rank)
        disp.message(f"interrupted by signal {stopper.signum}; uploading what is new "
                     f"(at most {INTERRUPT_UPLOAD_S:.0f} s)")
        done = sync.close(timeout=INTERRUPT_UPLOAD_S)
        if not done:
            log.warning("uploads did not finish within %.0f s; the previous complete checkpoint "
                        "stays valid in S3", INTERRUPT_UPLOAD_S)
        if sync.missing():
            log.warning("not in S3: %s; --resume on this machine uses the local copies, or "
                        "upload them with %s", ", ".join(sync.missing()),
                        push_command(ckdir, prefix, s3))
        result.uploaded_keys = list(sync.uploaded_keys)
        checkpoint_paths(result, ckdir)  # the snapshots are all complete now
        tracking_run.finish("interrupted", [run / "metrics.jsonl"], timeout=30)
        return result

    if failure is None and stopper.reason != "stopped":
        failure = classifier.classify(rc if rc is not None else 1, oom=oom.evidence([engine_pid]))
    if failure is not None:
        state.status = "failed"
        state.save(state_path)
        append_problem_log(run / "problem-log.md", failure,
                           context=f"segment {segment}, step {tracker.global_step}, "
                                   f"engine exit status {rc}")
        tracking_run.finish("failed", [run / "metrics.jsonl", run / "problem-log.md", run / "train.log"])
        mirror_run_files(run, ckdir, node_rank)
        sync.close(timeout=INTERRUPT_UPLOAD_S)
        raise EngineFailure(f"training failed: {failure.message} (see {run / 'train.log'}; "
                            f"last engine line: {failure.evidence.strip()[:200]})",
                            failure.fix, kind=failure.kind)
    for warning in classifier.warnings:
        append_problem_log(run / "problem-log.md", warning, context=f"segment {segment}")
    if stopper.reason == "stopped":
        result.status = "stopped"
    state.status = "completed" if result.status == "completed" else result.status
    state.save(state_path)
    mirror_run_files(run, ckdir, node_rank)
    try:
        plot_curves(run / "metrics.jsonl", run / "curves.png")
    except Exception as exc:  # noqa: BLE001 - a plot never fails a finished run
        log.warning("could not draw curves.png: %s", exc)
    tracking_run.finish(result.status, [run / "curves.png", run / "metrics.jsonl", run / "problem-log.md"])
    sync.close(timeout=max(INTERRUPT_UPLOAD_S, 600.0))
    result.uploaded_keys = list(sync.uploaded_keys)
    checkpoint_paths(result, ckdir)  # the snapshots are all complete now
    missing = sync.missing()
    if missing:  # everything is saved locally; S3, the system of record, lacks the end
        cause = sync.checkpoint_errors[-1] if sync.checkpoint_errors else "not finished in time"
        raise CheckpointsNotUploaded(
            f"training {result.status} at step {result.global_step} and everything is saved in "
            f"{ckdir}, but {len(missing)} checkpoint(s) did not reach S3: {', '.join(missing)} "
            f"(last error: {cause}).",
            f"fix the cause (`rectrain s3 check {checkpoint_s3}`), then upload them with "
            f"{push_command(ckdir, prefix, s3)}.")
    if sync.errors:
        log.warning("some uploads failed: %s", "; ".join(sync.errors[:3]))
    return result


def _check_resume_config(state: RunState, cfg: Dict[str, Any], plan: TrainPlan, run: Path,
                         config: Union[str, Path], resume: bool, allow: bool) -> None:
    """Record what the run depends on (first start), or compare a resume's config with it."""
    new = fingerprint(cfg)
    if resume and state.segments > 0:
        old = state.config_fingerprint
        if not old and (run / "config.yml").is_file() and Path(config).resolve() != run / "config.yml":
            # a run-state written before fingerprints: the copy the run started with
            old = fingerprint(load_engine_config(run / "config.yml", require=("Global", "Train")).data)
        diffs = check_config_change(old, new, allow=allow, config=str(config))
        if diffs:
            log.warning("warning: --allow-config-change: resuming with a changed config: %s",
                        "; ".join(diffs))
            state.history.append({"config_change": diffs, "time": time.time()})
    state.config_fingerprint = new


def _result(run: Path, ckdir: Path, tracker: MetricsTracker, plan: TrainPlan) -> TrainResult:
    """A completed-run result with where the best and latest checkpoints are."""
    result = TrainResult(status="completed", exit_code=EXIT_OK, run_dir=run, checkpoint_dir=ckdir,
                         global_step=tracker.global_step,
                         epoch=tracker.last_train.get("epoch", 0) if tracker.last_train else 0,
                         metrics_path=run / "metrics.jsonl", plan=plan)
    checkpoint_paths(result, ckdir)
    return result
