"""One training run as values: :class:`TrainRequest` (what to do) and :class:`TrainResult`
(how it ended).

Every front end builds a request and hands it to :func:`rectrain.training.runner.train`: the CLI
(``rectrain train``), the demo, the SageMaker in-job program, and the notebook-friendly
:func:`rectrain.training.runner.start_recognition_training`, whose keyword arguments
:meth:`TrainRequest.from_options` turns into one. A request is frozen and checked when it is
made (``--resume`` with ``--restart``, a device that does not exist, an ``s3://`` address that
is not one), so the run itself starts from values, not from strings and flags.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

from rectrain.errors import EXIT_OK, UserError
from rectrain.storage.s3 import S3Uri
from rectrain.tracking import TrackingOptions

MODES = ("new", "resume", "restart")
ADOPT_NEWEST = "*"
DEVICES = ("gpu", "cpu")


@dataclass(frozen=True)
class StopRules:
    """When a run ends before its schedule does.

    ``max_steps``: a schedule shortened to about N steps (see plan.py); on a resume, where to
    stop (the run keeps the schedule it started with). ``max_seconds``: stop at the first
    ``latest`` saved after that many seconds. ``early_stop``: N evaluations without a better
    metric. ``stop_at_step``: stop at the first ``latest`` saved at or after that step (the
    demo's fixed step count). All end with status ``stopped``, exit 0."""

    max_steps: Optional[int] = None
    max_seconds: Optional[float] = None
    early_stop: Optional[int] = None
    stop_at_step: Optional[int] = None


@dataclass(frozen=True)
class Placement:
    """Where the engine runs: the device, the GPUs of this host, and the hosts of a
    multi-host run (``nnodes``, this host's ``node_rank``, the ``master`` ``host:port``).
    ``env``: variables for the engine on this host (the in-job program's NCCL and launcher
    settings), added to what it inherits."""

    device: str = "gpu"
    gpus: Tuple[int, ...] = ()
    nnodes: int = 1
    node_rank: int = 0
    master: Optional[str] = None
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def uploads(self) -> bool:
        """Whether this host keeps the checkpoints (the engine saves on rank 0 only)."""
        return self.node_rank == 0

    @property
    def processes(self) -> int:
        """Training processes on this host (one per GPU used)."""
        return len(self.gpus) or 1

    @property
    def launcher(self) -> bool:
        """Whether the engine runs under ``paddle.distributed.launch``."""
        return len(self.gpus) > 1 or self.nnodes > 1


@dataclass(frozen=True)
class TrainRequest:
    """Everything a training run needs to know (see the module docstring)."""

    config: Path
    run_dir: Path
    placement: Placement = field(default_factory=Placement)
    checkpoint_s3: Optional[S3Uri] = None  # written without a trailing slash
    checkpoint_dir: Optional[Path] = None  # default: RUN_DIR/checkpoints
    mode: str = "new"  # new | resume | restart
    checkpoint_every_min: float = 30.0
    sub_epochs: Optional[int] = None
    stop: StopRules = field(default_factory=StopRules)
    workers: Union[None, int, str] = None
    tracking: Optional[TrackingOptions] = None
    allow_config_change: bool = False
    # --resume without run-state.json: the run to continue, named (never adopted silently);
    # ADOPT_NEWEST: the run of the newest marker (a SageMaker job's own checkpoint folder)
    adopt_run: Optional[str] = None
    display: str = "rich"
    paddleocr_dir: Optional[str] = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"TrainRequest.mode {self.mode!r}: one of {', '.join(MODES)}")
        if self.placement.device not in DEVICES:
            raise UserError(f"--device {self.placement.device!r} is not supported.",
                            "use --device gpu or --device cpu.")
        if self.checkpoint_s3 is not None and self.checkpoint_s3.key.endswith("/"):
            object.__setattr__(self, "checkpoint_s3", S3Uri(self.checkpoint_s3.bucket,
                                                            self.checkpoint_s3.key.rstrip("/")))

    @property
    def resume(self) -> bool:
        return self.mode == "resume"

    @property
    def restart(self) -> bool:
        return self.mode == "restart"

    @property
    def run(self) -> Path:
        """The run folder, absolute."""
        return Path(self.run_dir).expanduser().resolve()

    @property
    def checkpoints(self) -> Path:
        """Where the engine writes its checkpoints (``Global.save_model_dir``), absolute."""
        if self.checkpoint_dir:
            return Path(self.checkpoint_dir).expanduser().resolve()
        return self.run / "checkpoints"

    def replace(self, **changes: Any) -> TrainRequest:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_options(cls, config: Union[str, Path], run_dir: Union[str, Path], *, device: str = "gpu",
                     gpus: Optional[Sequence[int]] = None, checkpoint_s3: Union[None, str, S3Uri] = None,
                     checkpoint_dir: Optional[Union[str, Path]] = None, resume: bool = False,
                     restart: bool = False, nnodes: int = 1, node_rank: int = 0,
                     master: Optional[str] = None, max_steps: Optional[int] = None,
                     max_seconds: Optional[float] = None, early_stop: Optional[int] = None,
                     stop_at_step: Optional[int] = None, **fields: Any) -> TrainRequest:
        """A request from ``start_recognition_training``'s keyword arguments (and the CLI's
        flags): the edge where an ``s3://`` text becomes an :class:`S3Uri` and ``resume`` /
        ``restart`` a mode."""
        if resume and restart:
            raise UserError("--resume and --restart exclude each other.",
                            "--resume continues the run; --restart starts a new one: give one.")
        mode = "resume" if resume else "restart" if restart else "new"
        return cls(
            config=Path(config), run_dir=Path(run_dir),
            placement=Placement(device=device, gpus=tuple(gpus or ()), nnodes=nnodes,
                                node_rank=node_rank, master=master),
            checkpoint_s3=S3Uri.parse(checkpoint_s3) if checkpoint_s3 else None,
            checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir else None, mode=mode,
            stop=StopRules(max_steps=max_steps, max_seconds=max_seconds, early_stop=early_stop,
                           stop_at_step=stop_at_step),
            **fields)


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
    plan: Any = None  # the TrainPlan the run followed
    run_id: str = ""  # the run's id (run-state.json, every checkpoint's marker)

    @classmethod
    def stopped_before_start(cls, run: Path, ckdir: Path, step: int, epoch: int, plan: Any,
                             run_id: str = "") -> TrainResult:
        """A resume at or past ``--max-steps``: nothing trained."""
        return cls(status="stopped", exit_code=EXIT_OK, run_dir=run, checkpoint_dir=ckdir,
                   global_step=step, epoch=epoch, metrics_path=run / "metrics.jsonl", plan=plan,
                   run_id=run_id)
