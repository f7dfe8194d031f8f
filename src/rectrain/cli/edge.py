"""What command handlers take from the edge: the settings (read once, by ``cli/main.py``), the
S3 service built from the command's flags, and ``s3://`` arguments parsed into ``S3Uri``.

Nothing below the CLI reads the environment or parses an address again: handlers pass these
values down."""

from __future__ import annotations

import argparse
from typing import Any, Optional

from rectrain.settings import Settings


def settings(args: argparse.Namespace) -> Settings:
    """The settings ``main`` read for this command (read here when a handler runs alone)."""
    found = getattr(args, "settings", None)
    if found is None:
        found = Settings.from_env()
        args.settings = found
    return found


def s3_service(args: argparse.Namespace, *, workers: Optional[int] = None, **options: Any) -> Any:
    """The one :class:`~rectrain.storage.service.S3Service` of this command: ``--endpoint-url``,
    ``--profile``, ``--region``, ``--no-fastpath`` / ``RECTRAIN_NO_FASTPATH``, the retry budget
    ``RECTRAIN_S3_RETRY_S`` (flags the
    command does not have count as not given); a pool for ``workers`` threads."""
    from rectrain.storage.parallel import TRANSFER_WORKERS  # lazy: keeps `rectrain --help` fast
    from rectrain.storage.service import S3Service

    fastpath = not getattr(args, "no_fastpath", False) and not settings(args).no_fastpath
    options.setdefault("profile", getattr(args, "profile", None))
    options.setdefault("region", getattr(args, "region", None))
    options.setdefault("retry_budget_s", settings(args).s3_retry_s)
    return S3Service.for_workers(getattr(args, "endpoint_url", None), workers or TRANSFER_WORKERS,
                                 fastpath=fastpath, **options)


def s3_uri(text: Any) -> Any:
    """An ``s3://`` argument as an :class:`~rectrain.storage.s3.S3Uri` (a user error when it is not)."""
    from rectrain.storage.s3 import S3Uri  # lazy: keeps `rectrain --help` fast

    return S3Uri.parse(text)
