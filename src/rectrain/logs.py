"""Logging: loggers for the library, the set-up for entry points.

A library leaves logging to its application. Library modules only call :func:`get_logger`,
which has no side effects; :func:`setup_logging` (a handler on the ``rectrain`` logger, its
level, the AWS SDK's chatter quietened) is called by the entry points alone: ``rectrain``
(``cli/main.py``, which also runs the demo and the SageMaker container's entry point).
Without it, as in a notebook that only imports the Python API, Python's last-resort handler
prints the library's warnings and errors to stderr; call ``rectrain.setup_logging()`` to see
its progress messages too.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Dict

from rectrain.redaction import redact


class RedactFilter(logging.Filter):
    """Every record's message through the one redaction (no password or token in a log line,
    whatever handler writes it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_REDACT = RedactFilter()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: Dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra = getattr(record, "data", None)
        if isinstance(extra, dict):
            payload.update(extra)
        return json.dumps(payload, ensure_ascii=False)


def setup_logging(level: str = "info", fmt: str = "human") -> None:
    """Send the ``rectrain`` loggers' records at ``level`` and above to stderr, as bare
    messages (``fmt="human"``) or one JSON object per line (``fmt="json"``). For entry points
    (and notebooks); calling it again replaces the previous set-up."""
    logger = logging.getLogger("rectrain")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_REDACT)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(getattr(logging, level.upper(), logging.INFO))
    logger.propagate = False
    # Paddle configures the root logger at INFO when the engine's inference code is imported;
    # keep the AWS SDK's chatter ("Found credentials in environment variables") out of it.
    for noisy in ("botocore", "boto3", "s3transfer", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> logging.Logger:
    """The ``rectrain.<name>`` logger. Configures nothing (see :func:`setup_logging`) but the
    redaction of its records (before any handler, the last-resort one included, sees them)."""
    logger = logging.getLogger(name if name.startswith("rectrain") else f"rectrain.{name}")
    if _REDACT not in logger.filters:
        logger.addFilter(_REDACT)
    return logger
