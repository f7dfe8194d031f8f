"""CLI wiring for `rectrain train`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, List, Optional

from rectrain.cli import ranges
from rectrain.cli.edge import s3_service, s3_uri, settings
from rectrain.cli.tracking_args import add_tracking_args, tracking_options
from rectrain.errors import EXIT_INTERRUPTED, UserError
from rectrain.logs import get_logger


def _gpus(text: Optional[str]) -> Optional[List[int]]:
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise UserError(f"--gpus {text!r} is not a list of GPU indices.",
                        "write it as 0 or 0,1,2,3.") from exc


def register(sub) -> None:  # noqa: ANN001
    p = sub.add_parser("train", help="train a recognition model (the PaddleOCR engine, streamed, "
                                     "checkpoints to S3, resumable)",
                       description="Run PaddleOCR's tools/train.py on CONFIG with live progress, "
                                   "metrics.jsonl, checkpoints uploaded to S3 as they are saved, "
                                   "and --resume after an interruption (exit 75).")
    p.add_argument("--config", required=True, help="the training config (rectrain config build)")
    p.add_argument("--run-dir", required=True, help="folder for train.log, metrics.jsonl, checkpoints")
    p.add_argument("--device", choices=["gpu", "cpu"], default="gpu",
                   help="gpu (default; refused without a GPU) or cpu (slow, for smoke tests)")
    p.add_argument("--gpus", help="GPU indices, e.g. 0,1 (several: paddle.distributed.launch)")
    p.add_argument("--checkpoint-s3", help="s3://bucket/prefix to upload checkpoints to")
    p.add_argument("--checkpoint-dir", help="where the engine writes checkpoints "
                                            "(default RUN_DIR/checkpoints)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the newest complete checkpoint of this run (local or in "
                        "S3); refuses (exit 2, with the list) when checkpoints exist but none is "
                        "usable")
    p.add_argument("--adopt-run", metavar="ID", default=None,
                   help="with --resume where run-state.json is lost: continue run ID (shown by "
                        "`rectrain ckpt list`); a run is never adopted from the checkpoints silently")
    p.add_argument("--restart", action="store_true",
                   help="start a new run where checkpoints already are (without --resume or "
                        "--restart that refuses)")
    p.add_argument("--checkpoint-every", type=ranges.positive(), default=30.0, metavar="MIN",
                   help="save at least every MIN minutes (sub-epochs; default 30)")
    p.add_argument("--sub-epochs", type=ranges.count(1), default=None, metavar="K",
                   help="split each epoch into K engine epochs (default: from --checkpoint-every)")
    p.add_argument("--endpoint-url", help="S3 endpoint (SeaweedFS, MinIO); default: AWS config")
    p.add_argument("--paddleocr-dir", help="an official PaddleOCR checkout to use as the engine")
    p.add_argument("--max-steps", type=ranges.count(1),
                   help="train about N steps then stop cleanly (tests, demos)")
    p.add_argument("--max-seconds", type=ranges.positive(), metavar="S",
                   help="stop at the first checkpoint saved after S seconds (time budgets)")
    p.add_argument("--allow-config-change", action="store_true",
                   help="--resume even though the config changed batch size, epochs, learning rate, "
                        "architecture or dictionary since the run started (logged)")
    p.add_argument("--early-stop", type=ranges.count(1), metavar="N",
                   help="stop after N evaluations without a better metric (the best model is kept)")
    p.add_argument("--workers", type=ranges.WORKERS_OR_AUTO, default=None, metavar="N|auto",
                   help="data-loader workers: auto (sized from the usable CPUs), a number, or "
                        "the config's num_workers (default); /dev/shm is checked either way")
    p.add_argument("--nnodes", type=ranges.count(1), default=1, help=argparse.SUPPRESS)
    p.add_argument("--node-rank", type=ranges.count(0), default=0, help=argparse.SUPPRESS)
    p.add_argument("--master", help=argparse.SUPPRESS)
    p.add_argument("--display", choices=["rich", "plain", "json", "none"], default=None,
                   help="live panel (default on a terminal), plain engine lines, or JSON lines")
    add_tracking_args(p)
    p.set_defaults(func=handle)


def request_from_args(args) -> Any:  # noqa: ANN001
    """The :class:`~rectrain.training.request.TrainRequest` the flags describe."""
    # lazy: keeps `rectrain --help` fast
    from rectrain.training.request import Placement, StopRules, TrainRequest

    if args.resume and args.restart:
        raise UserError("--resume and --restart exclude each other.",
                        "--resume continues the run; --restart starts a new one: give one.")
    display = args.display or ("json" if getattr(args, "log_format", "human") == "json" else "rich")
    return TrainRequest(
        config=Path(args.config), run_dir=Path(args.run_dir),
        placement=Placement(device=args.device, gpus=tuple(_gpus(args.gpus) or ()), nnodes=args.nnodes,
                            node_rank=args.node_rank, master=args.master),
        checkpoint_s3=s3_uri(args.checkpoint_s3) if args.checkpoint_s3 else None,
        checkpoint_dir=Path(args.checkpoint_dir) if args.checkpoint_dir else None,
        mode="resume" if args.resume else "restart" if args.restart else "new",
        checkpoint_every_min=args.checkpoint_every, sub_epochs=args.sub_epochs,
        stop=StopRules(max_steps=args.max_steps, max_seconds=args.max_seconds, early_stop=args.early_stop),
        workers=args.workers, tracking=tracking_options(args),
        allow_config_change=args.allow_config_change, adopt_run=args.adopt_run, display=display,
        paddleocr_dir=args.paddleocr_dir)


def handle(args) -> int:  # noqa: ANN001
    from rectrain.training.runner import train  # lazy: keeps `rectrain --help` fast

    request = request_from_args(args)
    s3 = s3_service(args) if request.checkpoint_s3 is not None else None
    result = train(request, s3, settings(args))
    log = get_logger("train")
    if result.exit_code == EXIT_INTERRUPTED:
        log.warning("interrupted at step %d; checkpoints are saved. Fix: rerun the same command "
                    "with --resume.", result.global_step)
    else:
        log.info("%s: step %d, epoch %d. best: %s  metrics: %s", result.status, result.global_step,
                 result.epoch, result.best_checkpoint, result.metrics_path)
    return result.exit_code
