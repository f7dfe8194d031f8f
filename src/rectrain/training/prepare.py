"""A run, step 1 of 3: everything decided before the engine starts (see :mod:`.runner`).

Checks that refuse in seconds what would fail after minutes (the device, the config's files,
the pretrained head, the run folder, the checkpoint prefix's permissions), the run's state
(new, or the run to continue: its ``run-state.json``, restored from S3 or adopted from the
markers), the plan (sub-epochs, the schedule), the checkpoint to resume from, and the engine's
command as data. Nothing is trained here; a signal raises :class:`Interrupted` (nothing new to
save).
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from rectrain.checkpoints import pickles
from rectrain.checkpoints.local import CheckpointInfo
from rectrain.checkpoints.owner import Ownership
from rectrain.checkpoints.run_state import STATE_FILE, RunState
from rectrain.config.modules import refuse_code_in_names
from rectrain.config.pretrained import check_pretrained_head, pretrained_file
from rectrain.engine import Engine, find_engine
from rectrain.engine.config import EngineConfig, load_engine_config
from rectrain.errors import ConfigError, RectrainError, UserError
from rectrain.logs import get_logger
from rectrain.outputs import copy_file, move, remove_tree, symlink
from rectrain.settings import Settings
from rectrain.storage.service import S3Service
from rectrain.training.agreement import agree_on_resume_step
from rectrain.training.command import build_train_command
from rectrain.training.plan import TrainPlan, make_plan
from rectrain.training.preflight import (
    check_checkpoint_prefix,
    check_device,
    check_train_inputs,
    claim_checkpoint_dir,
    claim_run_dir,
)
from rectrain.training.request import TrainRequest, TrainResult
from rectrain.training.resume import (
    Found,
    adopt_run,
    refuse_to_overwrite,
    restore_run_files,
    resume_point,
    run_ids,
    scan_checkpoints,
)
from rectrain.training.resume_check import check_config_change, fingerprint, past_max_steps_message
from rectrain.training.run_tracking import RunTracking, open_run_tracking
from rectrain.training.workers import apply_loader_choice

log = get_logger("training")
RESUME_COPY = "resume"  # <run>/resume/: the copy of the checkpoint the engine loads


@dataclass
class Prepared:
    """What the engine session and the finish need: the run, its state and plan, the command."""

    request: TrainRequest
    engine: Engine
    cfg: EngineConfig
    run: Path
    ckdir: Path
    state: RunState
    plan: TrainPlan
    argv: List[str]
    env: Dict[str, str]
    resume_from: Optional[Path] = None
    resume_info: Optional[CheckpointInfo] = None
    stop_at: Optional[int] = None  # where rectrain stops the engine (a plan's own end aside)
    tracking: Optional[RunTracking] = None

    @property
    def state_path(self) -> Path:
        return self.run / STATE_FILE

    @property
    def segment(self) -> int:
        return self.state.segments - 1


def prepare(request: TrainRequest, s3: Optional[S3Service], settings: Settings,
            owner: Optional[Ownership] = None) -> Tuple[Optional[Prepared], Optional[TrainResult]]:
    """``(prepared, None)``, or ``(None, result)`` when a resume has nothing left to train.
    Raises user errors (exit 2) for what cannot work. ``owner`` receives the run folder's lock
    and the checkpoint prefix's lease (the caller releases them when the run ends)."""
    engine, cfg = _check_inputs(request)
    run, ckdir = request.run, request.checkpoints
    owner = owner if owner is not None else Ownership()
    fresh = [p for p in (run, ckdir) if not p.exists()]
    try:
        return _prepare(request, s3, settings, engine, cfg, owner)
    except RectrainError:  # refused before training: a new run folder is not left behind
        for folder in fresh:  # (removed while its lock is still held; the caller releases it)
            remove_tree(folder, ignore_errors=True)
        raise


def _prepare(request: TrainRequest, s3: Optional[S3Service], settings: Settings, engine: Engine,
             cfg: EngineConfig, owner: Ownership) -> Tuple[Optional[Prepared], Optional[TrainResult]]:
    run, ckdir = request.run, request.checkpoints
    owner.lock_run(run)  # before anything is read or written: one process per run folder
    if request.checkpoint_s3 is not None:
        if s3 is None:
            raise ValueError("a request with checkpoint_s3 needs the S3 service that reaches it")
        if request.placement.uploads:  # the host that uploads: fail before any step is paid for
            check_checkpoint_prefix(s3, request.checkpoint_s3)
            owner.lease_prefix(s3, request.checkpoint_s3, settings.lease_ttl_s, settings.lease_settle_s)
    claim_run_dir(run, request.config, cfg.data)
    owner.lock_run(run)  # a run folder made just now
    claim_checkpoint_dir(ckdir, run, request.config, cfg.data, new_run=request.mode == "new")
    ckdir.mkdir(parents=True, exist_ok=True)
    if request.resume:
        restore_run_files(run, ckdir, request.checkpoint_s3, s3)
    state, found = _find_state(request, s3, cfg, run, ckdir)
    state, plan = _plan(request, cfg, state)
    owner.set_run_id(state.run_id)
    apply_loader_choice(cfg.data, plan.overrides, request.workers, gpus=request.placement.processes)
    resume_from, resume_info = _resume_point(request, s3, run, ckdir, plan, state, found)
    p = request.placement
    if p.nnodes > 1 and p.master:  # every host the same step, or none starts the engine
        agree_on_resume_step(p.master, p.node_rank, p.nnodes, resume_info.global_step if resume_info else 0,
                             settings.host_resolve_timeout_s)
    if resume_info is not None:
        done = _nothing_left(request, run, ckdir, plan, state, resume_info)
        if done is not None:
            return None, done
    _check_resume_config(request, state, cfg)
    prepared = Prepared(request, engine, cfg, run, ckdir, state, plan, *_command(
        request, engine, cfg, run, ckdir, plan, resume_from), resume_from=resume_from,
        resume_info=resume_info, stop_at=_stop_at(request, plan, state))
    _begin_segment(prepared, settings)
    return prepared, None


def _check_inputs(request: TrainRequest) -> Tuple[Engine, EngineConfig]:
    """The engine, the device asked for, the config (loaded once) and the files it names."""
    engine = find_engine(request.paddleocr_dir)
    check_device(request.placement.device, list(request.placement.gpus), engine.python)
    cfg = load_engine_config(request.config, require=("Global", "Train"))
    refuse_code_in_names(cfg.data, str(request.config))  # the engine eval()s them
    epochs = cfg.global_section.get("epoch_num")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ConfigError(f"{request.config}: Global.epoch_num is {epochs!r}; the engine would train "
                          "nothing (or its whole default schedule).",
                          "set Global.epoch_num to 1 or more (rectrain config build --epochs N).")
    check_train_inputs(cfg.data)
    if not request.resume:
        check_pretrained_head(cfg.data, str(request.config))
    return engine, cfg


def _find_state(request: TrainRequest, s3: Optional[S3Service], cfg: EngineConfig, run: Path,
                ckdir: Path) -> Tuple[Optional[RunState], List[Found]]:
    """The run's state (None: a new run) and the checkpoints already there; refuses to start a
    new run over an earlier one's state or checkpoints."""
    state = RunState.load(run / STATE_FILE)
    if state is not None and request.mode == "new" and state.status not in ("new",):
        raise UserError(f"{run} already holds a run ({state.status}, step {state.global_step}).",
                        "add --resume to continue it, --restart to start over, or choose a new "
                        "--run-dir.")
    found: List[Found] = []
    if not request.restart:  # what is there decides: continue it, refuse, or (nothing) start
        found = scan_checkpoints(ckdir, request.checkpoint_s3, s3=s3,
                                 sub_epochs=state.sub_epochs if state else 1)
    if request.mode == "new":
        refuse_to_overwrite(found)
    if request.resume and state is None:
        adopted = _adopt(request, found)
        if adopted is not None:  # run-state.json lost: the run named, checked in the markers
            log.warning("run-state.json is missing; continuing run %s (named in the marker of "
                        "%s)", adopted.run_id, adopted.location or adopted.name)
            plan = _make_plan(request, cfg, adopted.sub_epochs or request.sub_epochs,
                              request.stop.max_steps)
            state = _new_state(request, cfg, plan, adopted.run_id)
    if request.resume and state is None and not found and not any(p.is_file() for p in ckdir.rglob("*")):
        where = f" or under {request.checkpoint_s3}" if request.checkpoint_s3 is not None else ""
        raise UserError(f"--resume: {run} holds no run to continue (no {STATE_FILE}, no checkpoint in "
                        f"{ckdir}{where}).", "drop --resume to start a new run there, or pass the "
                        "--run-dir of the run to continue.")
    return state, found


def _adopt(request: TrainRequest, found: List[Found]) -> Optional[CheckpointInfo]:
    """The run a --resume without run-state.json continues: the one ``--adopt-run`` names (a
    SageMaker job: its own folder's newest), never one taken from S3 silently."""
    ids = run_ids(found)
    if not ids:
        return None
    wanted = request.adopt_run
    if wanted is None:
        raise UserError(
            f"--resume: {request.run / STATE_FILE} is missing, and the checkpoints found belong to "
            f"run(s) {', '.join(ids)}; a run is never adopted from the checkpoints silently.",
            f"if run {ids[0]} is yours, add --adopt-run {ids[0]} (`rectrain ckpt list` shows each "
            "checkpoint's run); or --restart to start a new run (the checkpoints there are then "
            "replaced), or another --checkpoint-s3 / --run-dir.")
    adopted = adopt_run(found, wanted)
    if adopted is None:
        raise UserError(f"--adopt-run {wanted}: no complete checkpoint of that run was found (runs "
                        f"there: {', '.join(ids)}).",
                        "check the id with `rectrain ckpt list`, or drop --adopt-run.")
    return adopted


def _make_plan(request: TrainRequest, cfg: EngineConfig, sub_epochs: Optional[int],
               max_steps: Optional[int]) -> TrainPlan:
    p = request.placement
    return make_plan(cfg.data, device=p.device, gpus=list(p.gpus), nnodes=p.nnodes,
                     sub_epochs=sub_epochs, max_steps=max_steps,
                     checkpoint_every_min=request.checkpoint_every_min)


def _new_state(request: TrainRequest, cfg: EngineConfig, plan: TrainPlan, run_id: str) -> RunState:
    prefix = request.checkpoint_s3
    return RunState(run_id=run_id, sub_epochs=plan.sub_epochs, epochs=plan.epochs,
                    engine_epochs=plan.engine_epochs, main_indicator=cfg.main_indicator,
                    checkpoint_s3=str(prefix) if prefix is not None else None,
                    plan_max_steps=request.stop.max_steps)


def _plan(request: TrainRequest, cfg: EngineConfig, state: Optional[RunState]) -> Tuple[RunState, TrainPlan]:
    """The run's plan: on a resume the run's own schedule (K and the --max-steps of its first
    start), never a new one: the engine rebuilds its lr scheduler from it while the scheduler's
    position comes from the checkpoint, so a different schedule would bend the learning-rate
    curve (see training.resume_check); --max-steps on a resume only says where to stop."""
    if state is not None and request.resume:
        return state, _make_plan(request, cfg, state.sub_epochs, state.plan_max_steps)
    plan = _make_plan(request, cfg, request.sub_epochs, request.stop.max_steps)
    return _new_state(request, cfg, plan, uuid.uuid4().hex[:12]), plan


def _stop_at(request: TrainRequest, plan: TrainPlan, state: RunState) -> Optional[int]:
    """The step where rectrain stops the engine (a plan made for --max-steps ends there itself)."""
    max_steps = request.stop.max_steps
    stop_at = max_steps if max_steps and max_steps != state.plan_max_steps else None
    if max_steps and not request.resume and "Global.epoch_num" not in plan.overrides:
        stop_at = max_steps
    return stop_at


def _resume_point(request: TrainRequest, s3: Optional[S3Service], run: Path, ckdir: Path,
                  plan: TrainPlan, state: RunState, found: List[Found],
                  ) -> Tuple[Optional[Path], Optional[CheckpointInfo]]:
    if not request.resume:
        return None, None
    # the engine's copy lives in the run folder, never in the synced checkpoint folder (it
    # would go up again after each restart); removed once the engine has loaded it
    dest = run / RESUME_COPY
    # the engine's own files are as this machine's disk kept them, unless an outside sync
    # (SageMaker's, for a checkpoint folder outside the run) restored them
    trusted = request.checkpoint_s3 is not None or run in ckdir.parents
    return resume_point(ckdir, request.checkpoint_s3, dest_dir=dest, s3=s3, sub_epochs=plan.sub_epochs,
                        run_id=state.run_id, found=found, engine_trusted=trusted)


def _nothing_left(request: TrainRequest, run: Path, ckdir: Path, plan: TrainPlan, state: RunState,
                  info: CheckpointInfo) -> Optional[TrainResult]:
    max_steps = request.stop.max_steps
    nothing_left = past_max_steps_message(info.global_step, max_steps, state.plan_max_steps)
    if nothing_left:
        log.warning("%s", nothing_left)
        return TrainResult.stopped_before_start(run, ckdir, info.global_step, info.epoch, plan,
                                                state.run_id)
    if max_steps:
        log.info("--resume --max-steps %d: continuing the run's schedule from step %d and "
                 "stopping at step %d (the last checkpoint before it is kept).", max_steps,
                 info.global_step, max_steps)
    return None


def _check_resume_config(request: TrainRequest, state: RunState, cfg: EngineConfig) -> None:
    """Record what the run depends on (first start), or compare a resume's config with it."""
    new = fingerprint(cfg.data)
    run, config = request.run, request.config
    if request.resume and state.segments > 0:
        old = state.config_fingerprint
        if not old and (run / "config.yml").is_file() and Path(config).resolve() != run / "config.yml":
            # a run-state written before fingerprints: the copy the run started with
            old = fingerprint(load_engine_config(run / "config.yml", require=("Global", "Train")).data)
        diffs = check_config_change(old, new, allow=request.allow_config_change, config=str(config))
        if diffs:
            log.warning("warning: --allow-config-change: resuming with a changed config: %s",
                        "; ".join(diffs))
            state.history.append({"config_change": diffs, "time": time.time()})
    state.config_fingerprint = new


def _command(request: TrainRequest, engine: Engine, cfg: EngineConfig, run: Path, ckdir: Path,
             plan: TrainPlan, resume_from: Optional[Path]) -> Tuple[List[str], Dict[str, str]]:
    """The config's copy in the run folder, and the engine's command as data."""
    config = Path(request.config)
    if config.resolve() != run / "config.yml":
        copy_file(config, run / "config.yml")
    if request.placement.node_rank == 0:  # the engine logs to a file on the first host only
        _engine_log_out_of(ckdir)
    p = request.placement
    extra = _safe_weights(cfg, run, resume_from)
    return build_train_command(
        engine, str(config.resolve()), save_model_dir=str(ckdir), device=p.device,
        gpus=list(p.gpus) or None, resume_from=str(resume_from) if resume_from else None,
        plan_overrides=plan.overrides, extra_overrides=extra, nnodes=p.nnodes,
        node_rank=p.node_rank, master=p.master,
        log_dir=str(run / "launch-logs") if p.launcher else None, extra_env=dict(p.env))


def _safe_weights(cfg: EngineConfig, run: Path, resume_from: Optional[Path]) -> Dict[str, object]:
    """Overrides pointing the engine at re-pickled copies of the weights the config names
    (``Global.pretrained_model``, and ``Global.checkpoints`` when rectrain does not resume):
    the engine unpickles with plain pickle, rectrain's reader runs no code (issue 25)."""
    extra: Dict[str, object] = {}
    weights = pretrained_file(cfg.data)
    if weights is not None:
        safe = pickles.engine_copy(weights.with_suffix(""), run / "pretrained", suffixes=(".pdparams",))
        extra["Global.pretrained_model"] = str(safe)
    given = (cfg.data.get("Global") or {}).get("checkpoints")
    if given and resume_from is None:
        prefix = Path(str(given)).expanduser()
        prefix = prefix.with_suffix("") if prefix.suffix == ".pdparams" else prefix
        if prefix.with_name(prefix.name + ".pdparams").is_file():
            extra["Global.checkpoints"] = str(pickles.engine_copy(prefix, run / "given-checkpoint"))
    return extra


def _engine_log_out_of(ckdir: Path) -> None:
    """The engine also logs into ``save_model_dir/train.log`` (a second copy of what rectrain
    keeps in ``run/train.log``), growing in the checkpoint folder that is synced (SageMaker)
    and listed: it is pointed at the null device instead."""
    log_file = ckdir / "train.log"
    try:
        if log_file.is_symlink() and os.readlink(log_file) == os.devnull:
            return
        symlink(os.devnull, log_file)
    except OSError as exc:  # only bytes: the engine then writes its own copy
        log.debug("could not point the engine's log at %s: %s", os.devnull, exc)


def archive_records(run: Path) -> None:
    """--restart: a new run's metrics history; the old one kept beside it (never appended to)."""
    old = run / "metrics.jsonl"
    if not old.is_file():
        return
    n = 1
    while (run / f"metrics-before-restart-{n}.jsonl").exists():
        n += 1
    move(old, run / f"metrics-before-restart-{n}.jsonl")
    log.info("--restart: the earlier metrics history is kept as %s", f"metrics-before-restart-{n}.jsonl")


def _begin_segment(prepared: Prepared, settings: Settings) -> None:
    """A new attempt in the run's history, its trackers opened, the state saved."""
    state, request = prepared.state, prepared.request
    info = prepared.resume_info
    if request.restart:
        archive_records(prepared.run)
    state.segments += 1
    state.status = "running"
    state.history.append({"segment": state.segments - 1, "started": time.time(),
                          "resumed_from": str(prepared.resume_from) if prepared.resume_from else None,
                          "resume_step": info.global_step if info else 0})
    p = request.placement
    prepared.tracking = open_run_tracking(
        request.tracking, prepared.run, Path(request.config).resolve(), prepared.cfg.data,
        engine=prepared.engine, device=p.device, gpus=list(p.gpus) or None, nnodes=p.nnodes,
        node_rank=p.node_rank, plan=prepared.plan, state=state,
        resume_step=info.global_step if info else 0, job=settings.sagemaker_job,
        instance_type=settings.instance_type)
    state.save(prepared.state_path)
