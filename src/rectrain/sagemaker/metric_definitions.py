"""``MetricDefinitions`` for the PaddleOCR 2.10 training log.

SageMaker scans every line the container writes to CloudWatch with each regex and records the
first capture group as a float. The regexes are built from the engine log's one grammar
(:mod:`rectrain.engine.log`: the training, evaluation and best-metric line heads, the key
separators, the number form) that also parses ``metrics.jsonl``; each definition names the
record key the parser gives the same value, and tests/engine/test_engine_log.py checks on real
engine logs that both read the same number. Values may be written in exponent form
(``2.4999937499048386e-06``); a ``nan`` loss is not recorded (numbers only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional

from rectrain.engine.log import NUMBER, field_regex, line_regex, record_key, train_head
from rectrain.errors import ConfigError

# SageMaker's limits (CreateTrainingJob, AlgorithmSpecification.MetricDefinitions).
MAX_METRICS = 40
MAX_REGEX_CHARS = 500
MAX_NAME_CHARS = 255


@dataclass(frozen=True)
class EngineMetric:
    """One value of the engine's log as a SageMaker metric: the line it is on (``train``,
    ``eval``, ``best``), the key the engine writes, and the regex (one capture group)."""

    name: str
    line: str
    key: str
    regex: str

    @property
    def record_key(self) -> str:
        """Where :func:`rectrain.engine.log.parse_line` puts the same value."""
        return record_key(self.line, self.key)

    def definition(self) -> Dict[str, str]:
        return {"Name": self.name, "Regex": self.regex}


def _field(name: str, line: str, key: str) -> EngineMetric:
    return EngineMetric(name, line, key, line_regex(line) + field_regex(key) + NUMBER)


def _unit(name: str, key: str, unit: str) -> EngineMetric:
    """A training field written with a unit after the number (``ips: 23.1 samples/s``)."""
    return EngineMetric(name, "train", key, line_regex("train") + f", {key}: " + NUMBER + unit)


_HEAD = train_head(False)
ENGINE_METRICS: List[EngineMetric] = [
    _field("train:loss", "train", "loss"),
    _field("train:acc", "train", "acc"),
    _field("train:norm_edit_dis", "train", "norm_edit_dis"),
    _field("train:lr", "train", "lr"),
    _unit("train:samples_per_sec", "ips", " samples/s"),
    _unit("train:batch_cost_sec", "avg_batch_cost", " s"),
    _unit("train:reader_cost_sec", "avg_reader_cost", " s"),
    _field("train:ctc_loss", "train", "CTCLoss"),
    _field("train:nrtr_loss", "train", "NRTRLoss"),
    EngineMetric("train:epoch", "train", "epoch",
                 _HEAD.replace(r"\[[0-9]+/", r"\[([0-9]+)/", 1) + ","),
    EngineMetric("train:global_step", "train", "global_step",
                 _HEAD.replace("global_step: [0-9]+", "global_step: ([0-9]+)") + ","),
    # GPU only (print_mem_info): "..., eta: 0:10:00, max_mem_reserved: 5120 MB, max_mem_allocated: 4096 MB"
    EngineMetric("train:gpu_mem_reserved_mb", "train", "max_mem_reserved",
                 line_regex("train") + r", max_mem_reserved: ([0-9]+) MB"),
    EngineMetric("train:gpu_mem_allocated_mb", "train", "max_mem_allocated",
                 line_regex("train") + r" max_mem_allocated: ([0-9]+) MB"),
    _field("eval:acc", "eval", "acc"),
    _field("eval:norm_edit_dis", "eval", "norm_edit_dis"),
    _field("eval:fps", "eval", "fps"),
    _field("eval:best_acc", "best", "acc"),
]
BUILTIN_METRICS: List[Dict[str, str]] = [m.definition() for m in ENGINE_METRICS]


def metric_definitions(extra: Optional[List[Dict[str, str]]] = None) -> List[Dict[str, str]]:
    """The built-in definitions plus ``extra`` ones (same ``Name``/``Regex`` form), checked
    against SageMaker's limits. Raises :class:`ConfigError`."""
    defs = [dict(d) for d in BUILTIN_METRICS]
    names = {d["Name"] for d in defs}
    for i, item in enumerate(extra or []):
        if not isinstance(item, dict) or set(item) != {"Name", "Regex"}:
            raise ConfigError(f"metrics[{i}] must have exactly the keys Name and Regex, got {item!r}.",
                              "write each extra metric as {Name: 'train:foo', Regex: 'foo: ([0-9.]+)'}.")
        if item["Name"] in names:
            raise ConfigError(f"metrics[{i}]: the metric name {item['Name']!r} is already defined.",
                              "pick another Name; built-in ones: " + ", ".join(sorted(names)) + ".")
        names.add(item["Name"])
        defs.append({"Name": str(item["Name"]), "Regex": str(item["Regex"])})
    check_metric_definitions(defs)
    return defs


def check_metric_definitions(defs: List[Dict[str, str]]) -> None:
    if len(defs) > MAX_METRICS:
        raise ConfigError(f"{len(defs)} metric definitions; SageMaker accepts at most {MAX_METRICS}.",
                          "drop some extra metrics from the job config.")
    for d in defs:
        if not d["Name"] or len(d["Name"]) > MAX_NAME_CHARS:
            raise ConfigError(f"metric name {d['Name']!r} must be 1-{MAX_NAME_CHARS} characters.",
                              "shorten the metric name.")
        if not d["Regex"] or len(d["Regex"]) > MAX_REGEX_CHARS:
            raise ConfigError(f"metric {d['Name']!r}: its regex has {len(d['Regex'])} characters; "
                              f"SageMaker accepts 1-{MAX_REGEX_CHARS}.", "shorten the regex.")
        try:
            compiled = re.compile(d["Regex"])
        except re.error as exc:
            raise ConfigError(f"metric {d['Name']!r}: invalid regex ({exc}).", "fix the regex.") from exc
        if compiled.groups < 1:
            raise ConfigError(f"metric {d['Name']!r}: the regex has no capture group; SageMaker "
                              "records the first group.", "put the value in parentheses: 'loss: ([0-9.]+)'.")


def parse_metrics(line: str, defs: Optional[List[Dict[str, str]]] = None) -> Dict[str, float]:
    """What SageMaker would record from one log line: ``{name: value}``."""
    found: Dict[str, float] = {}
    for d in defs or BUILTIN_METRICS:
        match = re.search(d["Regex"], line)
        if match:
            try:
                found[d["Name"]] = float(match.group(1))
            except ValueError:
                continue
    return found
