"""A training run: the engine's ``tools/train.py`` as a subprocess, its output streamed and
parsed, checkpoints snapshotted and uploaded, interruptions survived.

:func:`train` runs one :class:`TrainRequest` in three steps, each its own module:
:func:`~.prepare.prepare` (checks, the run's state and plan, the resume point, the engine's
command), :func:`~.session.run_engine` (the engine session: output, run log, checkpoints,
stop rules) and :func:`~.finish.finish` (interrupted, failed, completed or stopped: one arm
each). :func:`start_recognition_training` is the Python API's name for it: keyword arguments,
as a notebook has them, made into a request.

Run folder (``run_dir``)::

    train.log        the engine's full output (appended across resumes)
    metrics.jsonl    one JSON record per train/eval/save line (appended, never truncated)
    config.yml       a copy of the config; run-state.json: K, segments, best of the run
    checkpoints/     Global.save_model_dir (or ``checkpoint_dir``): the engine's files,
                     snapshots/s<step>-<name>-<id>/ (immutable verified copies, marker
                     last) and snapshots/<name>.json (latest, best_accuracy, best_of_run, ...)
    problem-log.md   classified failures; curves.png at the end
    pretrained/, given-checkpoint/   re-pickled copies of the weights the config names, which
                     the engine loads instead of the originals (docs/security.md)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional, Sequence, Union

from rectrain.checkpoints.owner import Ownership
from rectrain.settings import Settings
from rectrain.storage.service import S3Service
from rectrain.tracking import TrackingOptions
from rectrain.training.finish import finish, finish_untrained
from rectrain.training.prepare import prepare
from rectrain.training.request import Placement, StopRules, TrainRequest, TrainResult
from rectrain.training.session import run_engine
from rectrain.training.supervise import Stopper

__all__ = ["Placement", "StopRules", "TrainRequest", "TrainResult", "start_recognition_training",
           "train"]


def train(request: TrainRequest, s3: Optional[S3Service] = None,
          settings: Optional[Settings] = None) -> TrainResult:
    """Run ``request``: prepare, the engine session, the finish.

    ``s3`` reaches ``request.checkpoint_s3`` (required with it); ``settings`` are the
    ``RECTRAIN_*`` values the entry point read (default: the defaults). Returns a
    :class:`TrainResult` (``status`` completed / interrupted (exit 75) / stopped). Raises
    :class:`EngineFailure` (exit 4) with the classified cause when the engine fails,
    :class:`Interrupted` (exit 75) for a signal before the engine started, user errors for bad
    input before anything runs. SIGTERM/SIGINT handlers are installed for the whole call (from
    the main thread)."""
    settings = settings or Settings()
    stopper = Stopper()
    stopper.install()
    owner = Ownership()  # the run folder's lock and the prefix's lease, for the whole run
    try:
        prepared, done = prepare(request, s3, settings, owner)
        if prepared is None:  # a resume with nothing left to train
            assert done is not None
            return finish_untrained(request, done, s3, settings)
        outcome = run_engine(prepared, s3, settings, stopper)
        return finish(prepared, outcome, stopper, s3, settings)
    finally:
        owner.release()
        stopper.restore()


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
    """Train a recognition model with the PaddleOCR engine (the Python API; see :func:`train`).

    ``max_steps`` ends the run after about N steps (a shortened schedule, see plan.py); a
    resume at or past it trains nothing. A resume whose config changed the schedule or the
    model (training.resume_check) is refused unless ``allow_config_change`` (then logged).
    ``max_seconds`` stops it at the first ``latest`` saved after that many seconds (or, with no
    save in sight, at 1.25x + 120 s): both give status ``stopped``, exit 0.
    ``resume`` continues from the newest complete checkpoint of this run (local or in S3) and
    refuses (exit 2, with the list) when checkpoints exist but none is usable; ``restart``
    starts a new run on purpose where checkpoints already are (without either, that refuses).
    S3 (``checkpoint_s3``) is reached through ``s3``, else a service for ``endpoint_url``; the
    ``RECTRAIN_*`` settings are read here, once.
    """
    settings = Settings.from_env()
    if settings.tensorboard_dir and (tracking is None or tracking.tensorboard_dir is None):
        tracking = dataclasses.replace(tracking or TrackingOptions(),
                                       tensorboard_dir=settings.tensorboard_dir)
    request = TrainRequest.from_options(
        config, run_dir, device=device, gpus=gpus, checkpoint_s3=checkpoint_s3,
        checkpoint_dir=checkpoint_dir, resume=resume, restart=restart, nnodes=nnodes,
        node_rank=node_rank, master=master, max_steps=max_steps, max_seconds=max_seconds,
        early_stop=early_stop, stop_at_step=stop_at_step, checkpoint_every_min=checkpoint_every_min,
        sub_epochs=sub_epochs, workers=workers, tracking=tracking,
        allow_config_change=allow_config_change, display=display, paddleocr_dir=paddleocr_dir)
    if request.checkpoint_s3 is not None and s3 is None:
        s3 = S3Service(endpoint_url, retry_budget_s=settings.s3_retry_s)
    return train(request, s3, settings)
