"""The engine's training log, read in one place: the line shapes PaddleOCR 2.x writes, the parser
that turns one line into a record, and the SageMaker regexes for the same values.

The engine (tools/program.py) logs through the ``ppocr`` logger:

    [2026/11/25 19:39:43] ppocr INFO: epoch: [1/2], global_step: 1, lr: 0.001000, acc: 0.0,
        norm_edit_dis: 0.118453, loss: 72.388771, avg_reader_cost: 0.01124 s,
        avg_batch_cost: 0.17299 s, avg_samples: 4.0, ips: 23.12284 samples/s, eta: 0:00:01
        [, max_mem_reserved: 1234 MB, max_mem_allocated: 1000 MB]
    ... ppocr INFO: cur metric, acc: 0.0, norm_edit_dis: 1.2e-06, fps: 254.8
    ... ppocr INFO: save best model is to /run/checkpoints/best_accuracy
    ... ppocr INFO: best metric, acc: 0.0, is_float16: False, norm_edit_dis: ..., best_epoch: 1
    ... ppocr INFO: save model in /run/checkpoints/latest

Two readers use it: :func:`parse_line` (rectrain's own run log, ``metrics.jsonl``, through
:class:`rectrain.runlog.records.MetricsTracker`) and SageMaker, which scans every line of the
job's log with one regex per metric (``MetricDefinitions``, built by
:func:`field_regex` / :func:`line_regex` in :mod:`rectrain.sagemaker.metric_definitions`). Both
start from the same line heads here; tests/engine/test_engine_log.py checks on real engine logs
that every SageMaker regex reads exactly the value the parser records (:func:`record_key`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Dict, Optional, Union


def train_head(capture: bool) -> str:
    """The start of a training line: ``epoch: [E/N], global_step: S`` (named groups with
    ``capture``)."""
    def n(name: str) -> str:
        return f"(?P<{name}>[0-9]+)" if capture else "[0-9]+"
    return rf"epoch: \[{n('epoch')}/{n('epochs')}\], global_step: {n('step')}"


EVAL_HEAD = "cur metric,"  # an evaluation: the metrics of this eval
BEST_HEAD = "best metric,"  # the best so far (after each eval and at the end)
# SageMaker's regexes: one capture group, what a number looks like in the engine's log
# (exponents included: norm_edit_dis: 2.4999937499048386e-06)
NUMBER = r"([-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)"


def line_regex(line: str) -> str:
    """A regex matching a whole ``train``, ``eval`` or ``best`` line up to its fields."""
    # (the heads are plain text: no character in them is special in a regex)
    heads = {"train": train_head(False) + ",.*", "eval": EVAL_HEAD + ".*", "best": BEST_HEAD + ".*"}
    return heads[line]


def field_regex(key: str) -> str:
    """``, key: `` or ``global_step: N, key: ``: the key must start right after a separator so
    that ``loss`` does not match inside ``CTCLoss`` or ``ctc_loss``."""
    return r"[ ,]" + re.escape(key) + r": "


ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
PREFIX_RE = re.compile(
    r"^\[(?P<ts>\d{4}[/-]\d\d[/-]\d\d \d\d:\d\d:\d\d)(?:,\d+)?\]\s+(?P<logger>[\w.]+)\s+"
    r"(?P<level>[A-Z]+):\s?")
TRAIN_RE = re.compile(train_head(True) + r",?\s*(?P<rest>.*)$")
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
    elif text.startswith(EVAL_HEAD):
        record = {"type": "eval"}
        record.update(_pairs(text[len(EVAL_HEAD):]))
    elif text.startswith(BEST_HEAD):
        record = {"type": "best"}
        # after a resume the engine's dict also carries start_epoch (and rectrain's global_step)
        record.update({f"best_{k}" if not k.startswith("best_") else k: v
                       for k, v in _pairs(text[len(BEST_HEAD):]).items()
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


def record_key(line: str, key: str) -> str:
    """The key :func:`parse_line` gives the value the engine writes as ``key`` on a ``train``,
    ``eval`` or ``best`` line (``epoch`` of a training line is the engine's epoch)."""
    if line == "train" and key == "epoch":
        return "engine_epoch"
    if line == "best":
        return key if key.startswith("best_") else f"best_{key}"
    return RENAME.get(key, key)
