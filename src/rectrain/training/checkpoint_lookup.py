"""What a run keeps, read back after it: where its best and latest complete snapshots are,
the metric a resumed run has to beat, and the command that uploads what did not reach S3."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from rectrain.checkpoints.local import MARKER, engine_prefix, read_pointer, verify_snapshot
from rectrain.errors import IntegrityError
from rectrain.logs import get_logger
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import S3Service

log = get_logger("training")


def push_command(ckdir: Path, checkpoint_s3: Optional[S3Uri], s3: Optional[S3Service]) -> str:
    """The command that uploads what a run kept locally (``rectrain ckpt push``)."""
    endpoint_url = s3.endpoint_url if s3 is not None else None
    extra = f" --endpoint-url {endpoint_url}" if endpoint_url else ""
    return f"`rectrain ckpt push {ckdir} {checkpoint_s3}{extra}`"


def checkpoint_paths(result: Any, ckdir: Path) -> None:
    """The engine prefixes of the run's best (best_of_run, else the engine's best_accuracy)
    and of its latest complete snapshot."""
    best = read_pointer(ckdir / "snapshots", "best_of_run")
    if best is not None and (best[0] / MARKER).exists():
        result.best_checkpoint = engine_prefix(best[0])
    elif (ckdir / "best_accuracy.states").exists():
        result.best_checkpoint = ckdir / "best_accuracy"
    latest = read_pointer(ckdir / "snapshots", "latest")
    result.latest_checkpoint = engine_prefix(latest[0]) if latest and (latest[0] / MARKER).exists() \
        else None


def best_kept(ckdir: Path, indicator: str, recorded: Optional[float]) -> Optional[float]:
    """The metric to beat: that of the best_of_run snapshot actually here and verified (restored
    from S3 or by SageMaker), not only the number run-state.json recorded (its copy can be
    newer than the snapshot that reached S3 before an interruption: the run's best would then
    be replaced by nothing)."""
    got = read_pointer(ckdir / "snapshots", "best_of_run")
    if got is None:  # none survived: the next best becomes the run's best
        if recorded is not None:
            log.warning("run-state.json records a best %s of %.4f but no best_of_run snapshot is "
                        "here; the next evaluation's best replaces it", indicator, recorded)
        return None
    try:
        value = verify_snapshot(got[0]).metric.get(indicator)
    except IntegrityError:
        return None
    return float(value) if isinstance(value, (int, float)) else recorded
