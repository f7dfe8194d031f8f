"""A rich progress bar for transfers: files, bytes, rate and ETA. Thread-safe."""

from __future__ import annotations

import sys
import threading
from typing import Any, Optional


class TransferProgress:
    def __init__(self, description: str, total_files: int, total_bytes: int, enabled: bool = True) -> None:
        self.description = description
        self.total_files = total_files
        self.total_bytes = total_bytes
        self.files = 0
        self.enabled = enabled and total_files > 0
        self._lock = threading.Lock()
        self._progress: Optional[Any] = None
        self._task: Any = None

    def __enter__(self) -> TransferProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            console = Console(file=sys.stderr)
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[files]}/{task.fields[total_files]} files"),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=False,
                refresh_per_second=4,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(
                self.description, total=max(self.total_bytes, 1), files=0, total_files=self.total_files
            )
        return self

    def advance(self, nbytes: int, files: int = 1) -> None:
        with self._lock:
            self.files += files
            if self._progress is not None:
                self._progress.update(self._task, advance=nbytes, files=self.files)

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
            self._progress = None
