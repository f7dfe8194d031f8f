"""``start_recognition_training``: run the engine's tools/train.py as a subprocess, stream
and parse its output, snapshot and upload checkpoints, survive interruptions.

Run folder (``run_dir``)::

    train.log        the engine's full output (appended across resumes)
    metrics.jsonl    one JSON record per train/eval/save line (appended, never truncated)
    config.yml       a copy of the config; run-state.json: K, segments, best of the run
    checkpoints/     Global.save_model_dir (or ``checkpoint_dir``): the engine's files,
                     snapshots/<name>/ (verified copies, marker last), best_of_run/
    problem-log.md   classified failures; curves.png at the end
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import yaml

from rectrain.checkpoints.local import (
    MARKER,
    CheckpointInfo,
    engine_prefix,
    read_marker,
    scan_local,
    verify_snapshot,
)
from rectrain.checkpoints.sync import CheckpointSync
from rectrain.engine import find_engine
from rectrain.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    ConfigError,
    EngineFailure,
    EnvironmentProblem,
    IntegrityError,
    Interrupted,
    UserError,
)
from rectrain.logs import get_logger
from rectrain.training.display import make_display
from rectrain.training.failures import Failure, FailureClassifier, append_problem_log
from rectrain.training.launch import build_train_command
from rectrain.training.metrics import MetricsTracker, MetricsWriter
from rectrain.training.plan import TrainPlan, make_plan
from rectrain.training.state import STATE_FILE, RunState

log = get_logger("training")

CHECKPOINT_NAME_RE = re.compile(r"^(latest|best_accuracy|iter_epoch_\d+)$")
ITERS_RE = re.compile(r"train dataloader has (\d+) iters")
INTERRUPT_UPLOAD_S = float(os.environ.get("RECTRAIN_INTERRUPT_UPLOAD_S", "90"))
ENGINE_STOP_S = 30.0
RUN_FILES_EVERY_S = 60.0  # metrics.jsonl & co. to S3 at least this often while training


@dataclass
class TrainResult:
    status: str  # completed | interrupted | failed | stopped (max_steps / max_seconds)
    exit_code: int
    run_dir: Path
    checkpoint_dir: Path
    best_checkpoint: Optional[Path] = None  # the engine prefix of best_of_run (else best_accuracy)
    latest_checkpoint: Optional[Path] = None
    global_step: int = 0
    epoch: int = 0
    metrics_path: Optional[Path] = None
    uploaded_keys: List[str] = field(default_factory=list)
    failure: Optional[Failure] = None
    plan: Optional[TrainPlan] = None


# --------------------------------------------------------------------------------------------
# checks


def check_device(device: str, gpus: Optional[Sequence[int]], python: str) -> None:
    """Refuse to 'train on the GPU' without one (a CPU run would be silently 100x slower)."""
    if device not in ("gpu", "cpu"):
        raise UserError(f"--device {device!r} is not supported.", "use --device gpu or --device cpu.")
    if device == "cpu":
        return
    from rectrain.gpu import paddle_build, query_gpus

    report = query_gpus()
    if not report.gpus:
        raise EnvironmentProblem(
            f"no NVIDIA GPU is visible ({report.error or 'NVML found none'}).",
            "run on a GPU machine (check `nvidia-smi` and `rectrain doctor`), or pass --device cpu "
            "to train on the CPU (slow: for smoke tests).")
    if gpus:
        missing = [g for g in gpus if g >= len(report.gpus)]
        if missing:
            raise UserError(f"--gpus names GPU(s) {missing} but only {len(report.gpus)} are visible.",
                            f"use indices 0..{len(report.gpus) - 1}.")
    build = paddle_build(python)
    if not build.installed:
        raise EnvironmentProblem(f"Paddle cannot be imported by {python} ({build.error}).",
                                 "run ./setup.sh or `rectrain doctor`.")
    if not build.cuda_build:
        raise EnvironmentProblem(
            f"Paddle {build.version} is a CPU build but a GPU is present.",
            "install the paddlepaddle-gpu build matching your CUDA driver (see `rectrain doctor`), "
            "or pass --device cpu.")


def _load_config(config: Union[str, Path]) -> Dict[str, Any]:
    path = Path(config)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found.",
                          "create one with `rectrain config build`.")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}).", "fix the YAML syntax.") from exc
    if not isinstance(data, dict) or "Global" not in data or "Train" not in data:
        raise ConfigError(f"{path}: not a PaddleOCR training config (no Global/Train sections).",
                          "create one with `rectrain config build`.")
    return data


# --------------------------------------------------------------------------------------------
# resume


def find_resume_checkpoint(checkpoint_dir: Path, checkpoint_s3: Optional[str] = None, *,
                           endpoint_url: Optional[str] = None, sub_epochs: int = 1,
                           run_id: str = "") -> Optional[Path]:
    """The newest complete epoch-end checkpoint (``latest`` / ``iter_epoch_N``), local or in S3,
    as a ``Global.checkpoints`` prefix. S3 ones are downloaded and verified first.
    ``best_accuracy`` is never resumed from: it is saved mid-epoch and the engine would skip
    the rest of that epoch. With ``run_id``, checkpoints written by another run are ignored."""
    candidates: List[tuple] = []  # (global_step, is_local, kind, ref)

    def other_run(info: CheckpointInfo) -> bool:
        return bool(run_id and info.run_id and info.run_id != run_id)

    snap_root = checkpoint_dir / "snapshots"
    if snap_root.is_dir():
        for marker in snap_root.glob(f"*/{MARKER}"):
            if marker.parent.name.startswith("."):  # staging / temporary folders
                continue
            info = read_marker(marker)
            if info is None or not CHECKPOINT_NAME_RE.match(info.name) or info.name == "best_accuracy" \
                    or other_run(info):
                continue
            candidates.append((info.global_step, 1, "snapshot", marker.parent))
    for info in scan_local(checkpoint_dir, sub_epochs=sub_epochs):
        if info.name != "best_accuracy" and CHECKPOINT_NAME_RE.match(info.name):
            candidates.append((info.global_step, 0, "engine", checkpoint_dir / info.name))
    if checkpoint_s3:
        from rectrain.checkpoints.remote import list_remote

        for info in list_remote(checkpoint_s3, endpoint_url=endpoint_url):
            if CHECKPOINT_NAME_RE.match(info.name) and info.name != "best_accuracy" \
                    and not other_run(info):
                candidates.append((info.global_step, -1, "s3", info.name))
            elif other_run(info):
                log.warning("ignoring %s/%s: written by another run (%s)", checkpoint_s3,
                            info.name, info.run_id)
    if not candidates:
        return None
    candidates.sort(key=lambda c: (c[0], c[1]), reverse=True)
    for step, _, kind, ref in candidates:
        try:
            if kind == "snapshot":
                verify_snapshot(ref)
                return engine_prefix(ref)
            if kind == "engine":
                return Path(ref)
            from rectrain.checkpoints.remote import download_snapshot

            log.info("downloading checkpoint %s (step %s) from %s", ref, step, checkpoint_s3)
            folder = download_snapshot(checkpoint_s3 or "", ref, snap_root, endpoint_url=endpoint_url)
            return engine_prefix(folder)
        except (IntegrityError, UserError) as exc:
            log.warning("skipping checkpoint %s: %s", ref, exc)
    return None


def _restore_run_files(run_dir: Path, checkpoint_dir: Path, checkpoint_s3: str,
                       endpoint_url: Optional[str]) -> None:
    """On a fresh machine: bring back run-state.json, metrics.jsonl, problem-log.md and
    best_of_run/ from S3 so the history and the run's best continue."""
    from rectrain.checkpoints.remote import download_snapshot, read_remote_marker
    from rectrain.storage.s3 import S3Uri
    from rectrain.storage.transfer import download_file

    base = S3Uri.parse(checkpoint_s3)
    for fname in (STATE_FILE, "metrics.jsonl", "problem-log.md"):
        if not (run_dir / fname).exists():
            try:
                download_file(str(base.join(fname)), run_dir / fname, endpoint_url=endpoint_url)
            except Exception as exc:  # noqa: BLE001 - absent on a first attempt
                log.debug("no %s in %s: %s", fname, base, exc)
    if not (checkpoint_dir / "best_of_run" / MARKER).exists() and read_remote_marker(
            str(base.join("best_of_run", MARKER)), endpoint_url=endpoint_url):
        download_snapshot(checkpoint_s3, "best_of_run", checkpoint_dir, endpoint_url=endpoint_url)


def prepare_resume(prefix: Path, dest_dir: Path) -> Path:
    """A copy of the checkpoint whose ``.states`` also carries ``global_step`` inside
    ``best_model_dict``.

    PaddleOCR 2.10's ``load_model`` returns ``states["best_model_dict"]`` (plus start_epoch)
    and ``program.train`` reads ``global_step`` only from that dict, while ``save_model``
    stores it beside it: without this the step count restarts at 0 after a resume (the epoch
    and the learning rate do continue). The engine is not modified; only the copy it loads.
    """
    import pickle

    from rectrain.checkpoints.local import SUFFIXES, read_states

    dest_dir.mkdir(parents=True, exist_ok=True)
    states = read_states(prefix.with_name(prefix.name + ".states"))
    best = dict(states.get("best_model_dict") or {})
    best["global_step"] = int(states.get("global_step", 0))
    states["best_model_dict"] = best
    target = dest_dir / prefix.name
    for suffix in SUFFIXES[:-1]:
        src = prefix.with_name(prefix.name + suffix)
        dst = target.with_name(target.name + suffix)
        if dst.exists() or dst.is_symlink():
            dst.unlink()
        try:
            os.link(src, dst)  # the engine only reads them
        except OSError:
            shutil.copy2(src, dst)
    with open(target.with_name(target.name + ".states"), "wb") as fh:
        pickle.dump(states, fh, protocol=2)
    return target


MIRRORED = ("metrics.jsonl", STATE_FILE, "problem-log.md")


def _mirror_run_files(run: Path, ckdir: Path, node_rank: int = 0) -> None:
    """When the checkpoints live outside the run folder (SageMaker: /opt/ml/checkpoints, which
    SageMaker syncs and restores), keep a copy of the run's history beside them. Only the
    first host does: on several hosts every /opt/ml/checkpoints syncs to the same S3 prefix."""
    if node_rank != 0 or run in ckdir.parents:
        return
    dest = ckdir / "run"
    dest.mkdir(parents=True, exist_ok=True)
    for name in MIRRORED:
        if (run / name).is_file():
            tmp = dest / f".{name}.part"
            shutil.copyfile(run / name, tmp)
            os.replace(tmp, dest / name)


def _restore_mirrored_run_files(run: Path, ckdir: Path) -> None:
    for name in MIRRORED:
        src = ckdir / "run" / name
        if src.is_file() and not (run / name).exists():
            shutil.copyfile(src, run / name)


# --------------------------------------------------------------------------------------------
# the run


class _Stopper:
    """Forwards SIGTERM/SIGINT to the engine's process group and remembers why it stopped."""

    def __init__(self) -> None:
        self.proc: Optional[subprocess.Popen] = None
        self.reason: Optional[str] = None
        self.signum: Optional[int] = None
        self.raise_early = True
        self._old: Dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()

    def _handle(self, signum: int, frame: Any) -> None:  # noqa: ARG002
        if self.reason is None:
            self.reason = "interrupted"
            self.signum = signum
        if self.proc is None and self.raise_early:
            # still preparing (restoring from S3, choosing the checkpoint): nothing new to save
            self.raise_early = False
            raise Interrupted(f"interrupted by signal {signum} before the engine started; "
                              "nothing new to save.", "rerun the same command with --resume.")
        self.kill(signal.SIGTERM)

    def stop(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.kill(signal.SIGTERM)

    def kill(self, sig: int) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)  # the engine leads its own group (data loader workers too)
        except (ProcessLookupError, PermissionError):
            pass


def start_recognition_training(
    config: Union[str, Path], run_dir: Union[str, Path], *, device: str = "gpu",
    gpus: Optional[Sequence[int]] = None, checkpoint_s3: Optional[str] = None,
    checkpoint_dir: Optional[Union[str, Path]] = None, resume: bool = False,
    checkpoint_every_min: float = 30.0, endpoint_url: Optional[str] = None,
    paddleocr_dir: Optional[str] = None, nnodes: int = 1, node_rank: int = 0,
    master: Optional[str] = None, display: str = "rich", max_steps: Optional[int] = None,
    sub_epochs: Optional[int] = None, max_seconds: Optional[float] = None,
    workers: Union[None, int, str] = None,
) -> TrainResult:
    """Train a recognition model with the PaddleOCR engine; see the module docstring.

    ``max_steps`` ends the run after about N steps (a shortened schedule, see plan.py);
    ``max_seconds`` stops it at the first ``latest`` saved after that many seconds (or, with no
    save in sight, at 1.25x + 120 s): both give status ``stopped``, exit 0.
    Returns a :class:`TrainResult` (``status`` completed / interrupted (exit 75) / stopped).
    Raises :class:`EngineFailure` (exit 4) with the classified cause when the engine fails,
    :class:`Interrupted` (exit 75) for a signal before the engine started, and user errors for
    bad input before anything runs. SIGTERM/SIGINT handlers are installed for the whole call
    (from the main thread).
    """
    stopper = _Stopper()
    stopper.install()
    try:
        return _train(stopper, config, run_dir, device=device, gpus=gpus,
                      checkpoint_s3=checkpoint_s3, checkpoint_dir=checkpoint_dir, resume=resume,
                      checkpoint_every_min=checkpoint_every_min, endpoint_url=endpoint_url,
                      paddleocr_dir=paddleocr_dir, nnodes=nnodes, node_rank=node_rank,
                      master=master, display=display, max_steps=max_steps, sub_epochs=sub_epochs,
                      max_seconds=max_seconds, workers=workers)
    finally:
        stopper.restore()


def _train(stopper: _Stopper, config: Union[str, Path], run_dir: Union[str, Path], *, device: str,
           gpus: Optional[Sequence[int]], checkpoint_s3: Optional[str],
           checkpoint_dir: Optional[Union[str, Path]], resume: bool, checkpoint_every_min: float,
           endpoint_url: Optional[str], paddleocr_dir: Optional[str], nnodes: int, node_rank: int,
           master: Optional[str], display: str, max_steps: Optional[int],
           sub_epochs: Optional[int], max_seconds: Optional[float],
           workers: Union[None, int, str] = None) -> TrainResult:
    engine = find_engine(paddleocr_dir)
    check_device(device, gpus, engine.python)
    cfg = _load_config(config)
    run = Path(run_dir).expanduser().resolve()
    run.mkdir(parents=True, exist_ok=True)
    ckdir = Path(checkpoint_dir).expanduser().resolve() if checkpoint_dir else run / "checkpoints"
    ckdir.mkdir(parents=True, exist_ok=True)
    state_path = run / STATE_FILE
    if checkpoint_s3:
        from rectrain.storage.s3 import S3Uri

        checkpoint_s3 = str(S3Uri.parse(checkpoint_s3)).rstrip("/")
    if resume:
        _restore_mirrored_run_files(run, ckdir)
    if resume and checkpoint_s3:
        _restore_run_files(run, ckdir, checkpoint_s3, endpoint_url)
    state = RunState.load(state_path)
    if state is not None and not resume and state.status not in ("new",):
        raise UserError(f"{run} already holds a run ({state.status}, step {state.global_step}).",
                        "add --resume to continue it, or choose a new --run-dir.")

    main_indicator = str((cfg.get("Metric") or {}).get("main_indicator", "acc"))
    if state is not None and resume:
        plan = make_plan(cfg, device=device, gpus=list(gpus or []), nnodes=nnodes,
                         sub_epochs=state.sub_epochs, max_steps=max_steps,
                         checkpoint_every_min=checkpoint_every_min)
    else:
        plan = make_plan(cfg, device=device, gpus=list(gpus or []), nnodes=nnodes,
                         checkpoint_every_min=checkpoint_every_min, sub_epochs=sub_epochs,
                         max_steps=max_steps)
        state = RunState(run_id=uuid.uuid4().hex[:12], sub_epochs=plan.sub_epochs, epochs=plan.epochs,
                         engine_epochs=plan.engine_epochs, main_indicator=main_indicator,
                         checkpoint_s3=checkpoint_s3)

    from rectrain.training.workers import apply_loader_choice  # issue 17: loader sizing

    apply_loader_choice(cfg, plan.overrides, workers, gpus=len(gpus or []) or 1)
    resume_from: Optional[Path] = None
    resume_info: Optional[CheckpointInfo] = None
    if not resume and checkpoint_s3:
        from rectrain.checkpoints.remote import list_remote

        old = list_remote(checkpoint_s3, endpoint_url=endpoint_url)
        if old:
            log.warning("%s already holds checkpoints (%s, step %d) of an earlier run; this new "
                        "run replaces latest/best_accuracy there. Use --resume to continue that "
                        "run, or another --checkpoint-s3 prefix.", checkpoint_s3, old[0].name,
                        old[0].global_step)
    if resume:
        resume_from = find_resume_checkpoint(ckdir, checkpoint_s3, endpoint_url=endpoint_url,
                                             sub_epochs=plan.sub_epochs, run_id=state.run_id)
        if resume_from is not None:
            from rectrain.checkpoints.local import info_from_states

            resume_info = info_from_states(resume_from.parent, resume_from.name, plan.sub_epochs)
            resume_from = prepare_resume(resume_from, ckdir / "resume")

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
    state.save(state_path)

    stopper.raise_early = False  # from here on a signal stops the run the normal way
    disp = make_display(display)
    tracker = MetricsTracker(sub_epochs=plan.sub_epochs, segment=segment,
                             global_step=resume_info.global_step if resume_info else 0,
                             engine_epoch=resume_info.engine_epoch if resume_info else 0)
    classifier = FailureClassifier()

    def on_best(info: CheckpointInfo) -> None:
        state.best_metric = info.metric.get(main_indicator)
        state.best_global_step = info.global_step
        state.best_epoch = info.epoch
        state.save(state_path)

    # the engine saves checkpoints on rank 0 only; other hosts upload nothing
    sync = CheckpointSync(ckdir, run, s3_prefix=checkpoint_s3 if node_rank == 0 else None,
                          endpoint_url=endpoint_url,
                          sub_epochs=plan.sub_epochs, main_indicator=main_indicator,
                          best_so_far=state.best_metric, on_best=on_best, run_id=state.run_id)
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
                     "--resume: no complete checkpoint found; starting from the beginning")

    log_fh = (run / "train.log").open("ab")
    failure: Optional[Failure] = None
    rc: Optional[int] = None
    try:
        log_fh.write(f"\n# rectrain segment {segment}: {' '.join(argv)}\n".encode())
        log_fh.flush()
        try:
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    start_new_session=True, bufsize=0)
        except OSError as exc:
            raise EnvironmentProblem(f"cannot start the engine ({argv[0]}): {exc}.",
                                     "run ./setup.sh or `rectrain doctor`.") from exc
        stopper.proc = proc
        if stopper.reason:  # a signal arrived just before the engine existed
            stopper.kill(signal.SIGTERM)
        budget = threading.Event()
        timers: List[threading.Timer] = []
        if max_seconds:
            timers = [threading.Timer(max_seconds, budget.set),
                      threading.Timer(max_seconds * 1.25 + 120, stopper.stop, args=("stopped",))]
            for timer in timers:
                timer.daemon = True
                timer.start()
        assert proc.stdout is not None
        files_at = time.monotonic()
        for raw_bytes in iter(proc.stdout.readline, b""):
            log_fh.write(raw_bytes)
            log_fh.flush()
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
                disp.record(record)
                if record["type"] == "save" and CHECKPOINT_NAME_RE.match(record.get("name", "")):
                    sync.on_save(record["name"])
                    state.global_step = record["global_step"]
                    state.engine_epoch = record["engine_epoch"]
                    state.save(state_path)
                    if record["name"] == "latest":
                        _mirror_run_files(run, ckdir, node_rank)
                        if budget.is_set():
                            disp.message(f"--max-seconds {max_seconds:g} reached: stopping after "
                                         f"the checkpoint at step {record['global_step']}")
                            stopper.stop("stopped")
                if (record["type"] == "train" and max_steps and "Global.epoch_num" not in plan.overrides
                        and record["global_step"] >= max_steps):
                    stopper.stop("stopped")
        try:
            rc = proc.wait(timeout=ENGINE_STOP_S)
        except subprocess.TimeoutExpired:
            stopper.kill(signal.SIGKILL)
            rc = proc.wait()
        metrics.write(tracker.flush())
        for timer in timers:
            timer.cancel()
    finally:
        if stopper.proc is not None and stopper.proc.poll() is None:  # rectrain itself failed
            stopper.kill(signal.SIGTERM)
            try:
                stopper.proc.wait(timeout=ENGINE_STOP_S)
            except subprocess.TimeoutExpired:
                stopper.kill(signal.SIGKILL)
        log_fh.close()
        metrics.close()
        disp.stop()

    state.global_step = max(state.global_step, tracker.global_step)
    result = TrainResult(status="completed", exit_code=EXIT_OK, run_dir=run, checkpoint_dir=ckdir,
                         global_step=tracker.global_step,
                         epoch=tracker.last_train.get("epoch", 0) if tracker.last_train else 0,
                         metrics_path=run / "metrics.jsonl", plan=plan)
    best = ckdir / "best_of_run" / "best_of_run"
    if (best.parent / MARKER).exists():
        result.best_checkpoint = best
    elif (ckdir / "best_accuracy.states").exists():
        result.best_checkpoint = ckdir / "best_accuracy"
    latest = ckdir / "snapshots" / "latest" / "latest"
    result.latest_checkpoint = latest if (latest.parent / MARKER).exists() else None

    if stopper.reason == "interrupted":
        result.status, result.exit_code = "interrupted", EXIT_INTERRUPTED
        state.status = "interrupted"
        state.save(state_path)
        _mirror_run_files(run, ckdir, node_rank)
        disp.message(f"interrupted by signal {stopper.signum}; uploading what is new "
                     f"(at most {INTERRUPT_UPLOAD_S:.0f} s)")
        done = sync.close(timeout=INTERRUPT_UPLOAD_S)
        if not done:
            log.warning("uploads did not finish within %.0f s; the previous complete checkpoint "
                        "stays valid in S3", INTERRUPT_UPLOAD_S)
        result.uploaded_keys = list(sync.uploaded_keys)
        return result

    if failure is None and stopper.reason != "stopped":
        failure = classifier.classify(rc if rc is not None else 1)
    if failure is not None:
        state.status = "failed"
        state.save(state_path)
        append_problem_log(run / "problem-log.md", failure,
                           context=f"segment {segment}, step {tracker.global_step}, "
                                   f"engine exit status {rc}")
        _mirror_run_files(run, ckdir, node_rank)
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
    _mirror_run_files(run, ckdir, node_rank)
    try:
        from rectrain.training.plots import plot_curves

        plot_curves(run / "metrics.jsonl", run / "curves.png")
    except Exception as exc:  # noqa: BLE001 - a plot never fails a finished run
        log.warning("could not draw curves.png: %s", exc)
    sync.close(timeout=max(INTERRUPT_UPLOAD_S, 600.0))
    result.uploaded_keys = list(sync.uploaded_keys)
    if sync.errors:
        log.warning("some uploads failed: %s", "; ".join(sync.errors[:3]))
    return result

