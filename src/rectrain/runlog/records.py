"""The run log's records: engine lines completed into records (real epoch, carried step, merged
eval/best), appended to ``metrics.jsonl`` and read back. One engine line is parsed by
:func:`rectrain.engine.log.parse_line` (the one reader of the engine's log).

Every record carries a numeric ``epoch`` and ``global_step`` (eval records carry the last
train step). With sub-epochs (see docs/checkpoints.md) the engine's epoch is a sub-epoch;
``epoch`` is the real epoch and ``engine_epoch`` the engine's number.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Union

from rectrain.engine.log import parse_line, strip_line
from rectrain.outputs import open_append

__all__ = ["MetricsTracker", "MetricsWriter", "iter_metrics", "parse_line", "parse_log", "read_metrics",
           "strip_line"]


class MetricsTracker:
    """Turns engine lines into complete records: real epoch, carried step, merged eval/best.

    ``sub_epochs`` (K) engine epochs make one real epoch. ``segment`` numbers the attempts
    (0 for the first run, +1 per resume).
    """

    def __init__(self, sub_epochs: int = 1, segment: int = 0, global_step: int = 0,
                 engine_epoch: int = 0) -> None:
        self.k = max(1, int(sub_epochs))
        self.segment = segment
        self.global_step = global_step
        self.engine_epoch = engine_epoch
        self.engine_epochs: Optional[int] = None
        self.last_train: Dict[str, Any] = {}
        self._pending: Optional[Dict[str, Any]] = None

    def stamp(self, record: Dict[str, Any]) -> Dict[str, Any]:
        """Add epoch, step, segment and time to a record."""
        record.setdefault("engine_epoch", self.engine_epoch)
        record["epoch"] = int(math.ceil(record["engine_epoch"] / self.k)) if record["engine_epoch"] else 0
        if self.engine_epochs:
            record["epochs"] = int(math.ceil(self.engine_epochs / self.k))
        record.setdefault("global_step", self.global_step)
        record["segment"] = self.segment
        record["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        record["unix_time"] = round(time.time(), 3)
        return record

    def feed(self, raw: str) -> List[Dict[str, Any]]:
        """Records completed by this line (0, 1 or 2)."""
        bare = parse_line(raw)
        if bare is None:
            return []
        kind = bare["type"]
        out: List[Dict[str, Any]] = []
        if kind == "train":
            out += self.flush()
            self.global_step = bare["global_step"]
            self.engine_epoch = bare["engine_epoch"]
            self.engine_epochs = bare["engine_epochs"]
            record = self.stamp(bare)
            self.last_train = record
            out.append(record)
        elif kind == "eval":
            out += self.flush()
            self._pending = self.stamp(bare)
        elif kind == "save":
            if bare["is_best"] and self._pending is not None:
                self._pending["saved_best"] = True
            out.append(self.stamp(bare))
        elif kind == "best":
            best = {k: v for k, v in bare.items() if k != "type"}
            if self._pending is not None:
                self._pending.update(best)
                out += self.flush()
            else:  # the summary line at the end of training
                out.append(self.stamp(dict(bare)))
        # "resume from X": the runner writes its own resume record (with the checkpoint's step)
        return out

    def flush(self) -> List[Dict[str, Any]]:
        if self._pending is None:
            return []
        record, self._pending = self._pending, None
        return [record]


class MetricsWriter:
    """Appends records to metrics.jsonl (never truncates), one flushed line each."""

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open_append(self.path)
        if self.path.stat().st_size and not self.path.read_bytes().endswith(b"\n"):
            self._fh.write("\n")  # a line torn by a full disk or a kill stays a line of its own

    def write(self, records: Iterable[Dict[str, Any]]) -> None:
        wrote = False
        for record in records:
            self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            wrote = True
        if wrote:
            self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_metrics(path: Union[str, Path]) -> List[Dict[str, Any]]:
    """All records of a metrics.jsonl; a torn last line (a writer mid-write) is skipped."""
    return list(iter_metrics(path))


def iter_metrics(path: Union[str, Path]) -> Iterator[Dict[str, Any]]:
    p = Path(path)
    if not p.is_file():
        return
    with p.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def parse_log(lines: Iterable[str], sub_epochs: int = 1) -> List[Dict[str, Any]]:
    """Parse a whole captured engine log (tests, `rectrain monitor` on a bare log)."""
    tracker = MetricsTracker(sub_epochs=sub_epochs)
    out: List[Dict[str, Any]] = []
    for line in lines:
        out += tracker.feed(line)
    out += tracker.flush()
    return out
