"""The interface every tracking backend (MLflow, TensorBoard) implements."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional


class Sink:
    """One backend. Subclasses override what they support; ``problems`` collects what was
    not logged (one line each, for the problem log)."""

    name = "sink"

    def __init__(self) -> None:
        self.problems: List[str] = []

    def start(self, *, params: Dict[str, str], tags: Dict[str, str], config_file: Optional[Path],
              resume_step: int) -> None:
        """Open (or reopen) the backend's run."""

    def log(self, step: int, metrics: Dict[str, float], wall_time: float) -> None:
        """Queue metric values at ``step``."""

    def artifact(self, path: Path, subdir: Optional[str] = None) -> None:
        """Queue a file or folder."""

    def finish(self, status: str, timeout: float) -> None:
        """Flush and end the run."""

    def state(self) -> Dict[str, Any]:
        return {}
