"""TensorBoard event files with ``tensorboardX`` (a light writer: no TensorFlow, no torch).

One scalar per metric (``train/loss``, ``eval/acc``, ...) at the global step, with the
record's wall time. On a resume the writer purges events after the checkpoint's step, so the
work redone after an interruption is not drawn twice.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any, Dict, Optional

from rectrain.tracking.sink import Sink


def tensorboard_available() -> bool:
    try:
        return importlib.util.find_spec("tensorboardX") is not None
    except (ImportError, ValueError):  # a broken install, or blocked in sys.modules
        return False


class TensorBoardSink(Sink):
    name = "TensorBoard"

    def __init__(self, logdir: Path) -> None:
        super().__init__()
        self.logdir = Path(logdir)
        self.writer: Any = None
        self.values = 0

    def start(self, *, params: Dict[str, str], tags: Dict[str, str], config_file: Optional[Path],
              resume_step: int) -> None:
        from tensorboardX import SummaryWriter

        self.logdir.mkdir(parents=True, exist_ok=True)
        # tensorboardX names the file events.out.tfevents.<seconds>.<host>: a second writer in
        # the same second would truncate the first one's file. A millisecond suffix keeps them
        # apart and in the order TensorBoard reads them (by name).
        self.writer = SummaryWriter(logdir=str(self.logdir), flush_secs=10,
                                    purge_step=resume_step + 1 if resume_step > 0 else None,
                                    filename_suffix=f".{int(time.time() * 1000)}")
        if resume_step <= 0 and params:
            table = "| parameter | value |\n| --- | --- |\n" + "".join(
                f"| {k} | {str(v).replace('|', '/')} |\n" for k, v in sorted(params.items()))
            self.writer.add_text("run/parameters", table, 0)

    def _writing(self) -> bool:
        """False once tensorboardX's writer thread died (a full disk): its bounded queue would
        then block the caller forever, and its exit handler print a traceback."""
        if self.writer is None:
            return False
        workers = [getattr(events, "_worker", None) for events in self._event_writers()]
        if all(worker is None or worker.is_alive() for worker in workers):
            return True
        self.problems.append(f"TensorBoard: the event writer of {self.logdir} stopped (a full disk?); "
                             "later values are not in TensorBoard (metrics.jsonl has them).")
        self._abandon()
        return False

    def _event_writers(self) -> list:
        """tensorboardX's EventFileWriters behind the SummaryWriter (one per FileWriter)."""
        files = getattr(self.writer, "all_writers", None) or {}
        return [events for events in (getattr(fw, "event_writer", None) for fw in files.values())
                if events is not None]

    def _abandon(self) -> None:
        for events in self._event_writers():
            if hasattr(events, "_closed"):
                events._closed = True  # its atexit close would raise (and print) again
        self.writer = None

    def log(self, step: int, metrics: Dict[str, float], wall_time: float) -> None:
        if not self._writing():
            return
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, global_step=step, walltime=wall_time)
            self.values += 1

    def finish(self, status: str, timeout: float) -> None:
        if not self._writing():
            return
        try:
            self.writer.add_text("run/status", status)
            self.writer.close()
        except OSError:
            self._abandon()
            raise
        self.writer = None

    def state(self) -> Dict[str, Any]:
        return {"tensorboard_dir": str(self.logdir)}
