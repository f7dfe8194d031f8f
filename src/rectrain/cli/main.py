"""The ``rectrain`` command: wiring only. Each command family lives in its own module with a
``register(subparsers)`` function that adds its parser and sets ``func`` to a thin handler
over the library (as accelerate's ``commands/``)."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading
from typing import Any, List, Optional

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


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """The whole parser; with ``command`` (a family's own name, e.g. ``data``), only that
    family's: a command then imports the code it runs and nothing else (the 12 other families
    cost ~0.1 s at every start). :func:`main` falls back to the whole parser for anything else."""
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
    for name in [command] if command in COMMAND_MODULES else COMMAND_MODULES:
        module = importlib.import_module(f"rectrain.cli.{name}")
        module.register(sub)
    if command in COMMAND_MODULES and command not in sub.choices:
        return build_parser()  # that module's commands have other names (model: export, ...)
    return parser


def _command(argv: List[str]) -> Optional[str]:
    """The command family named on the command line (the first word after the global options)."""
    words = iter(argv)
    for word in words:
        if word in ("--log-level", "--log-format"):
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser(_command(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    log = get_logger("cli")
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    previous = _terminate_like_interrupt()
    # for the rest of the process: a library's daemon thread can die at exit too
    threading.excepthook = _thread_failed
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


def _thread_failed(args: Any) -> None:
    """A background thread of a library (TensorBoard's writer on a full disk, ...) died: one
    line of rectrain's instead of Python's traceback (shown with --log-level debug); the
    command's own result says what it means for the run."""
    if args.exc_type is SystemExit:
        return
    thread = args.thread.name if args.thread is not None else "?"
    get_logger("cli").debug("traceback:", exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
    try:  # also at interpreter exit, when logging's handlers may be closed already
        sys.stderr.write(f"warning: a background thread ({thread}) stopped: "
                         f"{args.exc_type.__name__}: {args.exc_value}\n")
    except (OSError, ValueError):
        pass


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
    code = main()
    # the command's result is decided: a SIGTERM during the interpreter's exit (thread and
    # atexit clean-up) would otherwise replace it with "killed by signal 15"
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(code)


if __name__ == "__main__":
    run()
