"""The ``rectrain`` command: wiring only. Each command family lives in its own module with a
``register(subparsers)`` function that adds its parser and sets ``func`` to a thin handler
over the library (as accelerate's ``commands/``)."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from typing import List, Optional

from rectrain._version import __version__
from rectrain.errors import (
    EXIT_INTERNAL_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USER_ERROR,
    RectrainError,
    UserError,
    user_os_error,
)
from rectrain.logs import get_logger, setup_logging
from rectrain.settings import Settings

# Command-family modules under rectrain.cli, in the order they appear in --help.
COMMAND_MODULES = [
    "doctor",
    "engine",
    "demo",
    "s3",
    "data",
    "config",
    "train",
    "bench",
    "monitor",
    "runs",
    "ckpt",
    "model",
    "sagemaker",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rectrain",
        description="Train PaddleOCR text-recognition models, locally or on Amazon SageMaker, "
        "with S3 as the system of record.",
    )
    parser.add_argument("--version", action="version", version=f"rectrain {__version__}")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-format", default="human", choices=["human", "json"],
                        help="human-readable logs (default) or one JSON object per line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"rectrain.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    log = get_logger("cli")
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    previous = _terminate_like_interrupt()
    try:
        args.settings = Settings.from_env()  # the one read of RECTRAIN_*; handlers pass it down
        result = args.func(args)
    except RectrainError as exc:
        log.error("error: %s", exc)
        if args.log_level == "debug" and not isinstance(exc, UserError):
            log.debug("traceback:", exc_info=True)
        return exc.exit_code
    except KeyboardInterrupt:
        log.error("interrupted: work already finished is kept (every file is written whole or not "
                  "at all). Fix: rerun the same command to continue.")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - the one place that turns bugs into a message
        user = user_os_error(exc) if isinstance(exc, OSError) else None
        if user is not None:  # a path the user gave: missing, not writable, disk full
            log.error("error: %s", user)
            if args.log_level == "debug":
                log.debug("traceback:", exc_info=True)
            return user.exit_code
        log.error("internal error: %s: %s. Fix: rerun with --log-level debug and report it "
                  "with the output.", type(exc).__name__, exc)
        if args.log_level == "debug":
            raise
        return EXIT_INTERNAL_ERROR
    finally:
        _restore_signal(previous)
    return int(result or 0)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the same clean-up, message and exit code."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated()


def _terminate_like_interrupt() -> object:
    """SIGTERM and SIGINT mean the same to every command (exit 75, documented in errors.py).
    Commands that supervise a process (train) install their own handlers on top."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        return signal.signal(signal.SIGTERM, _raise_terminated)
    except (ValueError, OSError):
        return None


def _restore_signal(previous: object) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)  # type: ignore[arg-type]


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
