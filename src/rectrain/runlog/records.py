"""Parse PaddleOCR 2.x training output into metric records, and append them to metrics.jsonl.

The engine (tools/program.py) logs through the ``ppocr`` logger:

    [2026/11/25 19:39:43] ppocr INFO: epoch: [1/2], global_step: 1, lr: 0.001000, acc: 0.0,
        norm_edit_dis: 0.118453, loss: 72.388771, avg_reader_cost: 0.01124 s,
        avg_batch_cost: 0.17299 s, avg_samples: 4.0, ips: 23.12284 samples/s, eta: 0:00:01
        [, max_mem_reserved: 1234 MB, max_mem_allocated: 1000 MB]
    ... ppocr INFO: cur metric, acc: 0.0, norm_edit_dis: 1.2e-06, fps: 254.8
    ... ppocr INFO: save best model is to /run/checkpoints/best_accuracy
    ... ppocr INFO: best metric, acc: 0.0, is_float16: False, norm_edit_dis: ..., best_epoch: 1
    ... ppocr INFO: save model in /run/checkpoints/latest

Every record carries a numeric ``epoch`` and ``global_step`` (eval records carry the last
train step). With sub-epochs (see docs/checkpoints.md) the engine's epoch is a sub-epoch;
``epoch`` is the real epoch and ``engine_epoch`` the engine's number.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Union

ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
PREFIX_RE = re.compile(
    r"^\[(?P<ts>\d{4}[/-]\d\d[/-]\d\d \d\d:\d\d:\d\d)(?:,\d+)?\]\s+(?P<logger>[\w.]+)\s+"
    r"(?P<level>[A-Z]+):\s?")
TRAIN_RE = re.compile(r"epoch: \[(?P<epoch>\d+)/(?P<epochs>\d+)\], global_step: (?P<step>\d+),?\s*"
                      r"(?P<rest>.*)$")
ETA_RE = re.compile(r"eta: (?P<eta>(?:(?P<days>\d+) days?, )?(?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d)(?:\.\d+)?)")
PAIR_RE = re.compile(r"(?P<key>[A-Za-z_][\w]*): (?P<value>[^,]+)")
SAVE_RE = re.compile(r"save (?P<best>best )?model (?:is to|in) (?P<path>\S+)")
RESUME_RE = re.compile(r"resume from (?P<path>\S+)")

RENAME = {"avg_reader_cost": "reader_cost_s", "avg_batch_cost": "batch_cost_s",
          "ips": "ips", "avg_samples": "samples", "max_mem_reserved": "gpu_mem_reserved_mb",
          "max_mem_allocated": "gpu_mem_allocated_mb"}


def strip_line(raw: str) -> Dict[str, Optional[str]]:
    """Remove ANSI codes and the ``[date] ppocr LEVEL:`` prefix."""
    line = ANSI_RE.sub("", raw).rstrip("\r\n")
    if "\r" in line:  # tqdm redraws: keep the last state
        line = line.split("\r")[-1]
    match = PREFIX_RE.match(line)
    if match:
        return {"text": line[match.end():], "ts": match.group("ts").replace("/", "-"),
                "level": match.group("level")}
    return {"text": line, "ts": None, "level": None}


def _number(text: str) -> Union[float, int, str, bool, None]:
    value = text.strip()
    for suffix in (" samples/s", " s", " MB"):
        if value.endswith(suffix):
            value = value[: -len(suffix)].strip()
    if value in ("True", "False"):
        return value == "True"
    try:
        number = float(value)
    except ValueError:
        return value
    if math.isnan(number) or math.isinf(number):
        return str(number)  # JSON has no NaN; keep it visible as text
    if number.is_integer() and re.fullmatch(r"-?\d+", value):
        return int(number)
    return number


def eta_seconds(text: str) -> Optional[int]:
    match = ETA_RE.search(text)
    if not match:
        return None
    days = int(match.group("days") or 0)
    return days * 86400 + int(match.group("h")) * 3600 + int(match.group("m")) * 60 + int(match.group("s"))


def _pairs(rest: str) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    rest = ETA_RE.sub("", rest)
    for match in PAIR_RE.finditer(rest):
        key = match.group("key")
        out[RENAME.get(key, key)] = _number(match.group("value"))
    return out


def parse_line(raw: str) -> Optional[Dict[str, Any]]:
    """One engine output line -> a bare record (``type`` train/eval/best/save/resume), or None."""
    parts = strip_line(raw)
    text = parts["text"] or ""
    record: Optional[Dict[str, Any]] = None
    match = TRAIN_RE.search(text)
    if match:
        record = {"type": "train", "engine_epoch": int(match.group("epoch")),
                  "engine_epochs": int(match.group("epochs")),
                  "global_step": int(match.group("step"))}
        record.update(_pairs(match.group("rest")))
        eta = eta_seconds(match.group("rest"))
        if eta is not None:
            record["eta_s"] = eta
    elif text.startswith("cur metric,"):
        record = {"type": "eval"}
        record.update(_pairs(text[len("cur metric,"):]))
    elif text.startswith("best metric,"):
        record = {"type": "best"}
        # after a resume the engine's dict also carries start_epoch (and rectrain's global_step)
        record.update({f"best_{k}" if not k.startswith("best_") else k: v
                       for k, v in _pairs(text[len("best metric,"):]).items()
                       if k not in ("is_float16", "start_epoch", "global_step")})
    else:
        save = SAVE_RE.search(text)
        if save and parts["level"] is not None:
            path = save.group("path")
            record = {"type": "save", "name": Path(path).name, "path": path,
                      "is_best": bool(save.group("best"))}
        else:
            resume = RESUME_RE.search(text)
            if resume and parts["level"] is not None:
                record = {"type": "resume", "path": resume.group("path")}
    if record is not None and parts["ts"]:
        record["engine_time"] = parts["ts"]
    return record


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
        self._fh = self.path.open("a", encoding="utf-8")

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
