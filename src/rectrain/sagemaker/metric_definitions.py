"""``MetricDefinitions`` for the PaddleOCR 2.10 training log.

SageMaker scans every line the container writes to CloudWatch with each regex and records the
first capture group as a float. The engine writes (``tools/program.py``)::

    [2026/11/25 19:39:18] ppocr INFO: epoch: [1/2], global_step: 1, lr: 0.000500, acc: 0.000000,
        norm_edit_dis: 0.015976, CTCLoss: 237.96, NRTRLoss: 6.92, loss: 244.89, avg_reader_cost:
        0.02724 s, avg_batch_cost: 2.10266 s, avg_samples: 4.0, ips: 1.90235 samples/s, eta: 0:00:06
    [2026/11/25 19:39:20] ppocr INFO: cur metric, acc: 0.0, norm_edit_dis: 2.49e-06, fps: 11.8
    [2026/11/25 19:39:21] ppocr INFO: best metric, acc: 0.0, is_float16: False, norm_edit_dis: ...

Training lines are recognised by ``global_step:``; evaluation lines by ``cur metric,`` (the
``best metric,`` line repeats the best values and is kept apart). Values may be written in
exponent form (``2.4999937499048386e-06``); a ``nan`` loss is not recorded (numbers only).
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional

from rectrain.errors import ConfigError

# SageMaker's limits (CreateTrainingJob, AlgorithmSpecification.MetricDefinitions).
MAX_METRICS = 40
MAX_REGEX_CHARS = 500
MAX_NAME_CHARS = 255

NUMBER = r"([-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)"
_TRAIN = r"epoch: \[[0-9]+/[0-9]+\], global_step: [0-9]+,.*"
_EVAL = r"cur metric,.*"
_BEST = r"best metric,.*"


def _key(name: str) -> str:
    """``, key: `` or ``global_step: N, key: `` - the key must start right after a separator so
    that ``loss`` does not match inside ``CTCLoss`` or ``ctc_loss``."""
    return r"[ ,]" + re.escape(name) + r": "


BUILTIN_METRICS: List[Dict[str, str]] = [
    {"Name": "train:loss", "Regex": _TRAIN + _key("loss") + NUMBER},
    {"Name": "train:acc", "Regex": _TRAIN + _key("acc") + NUMBER},
    {"Name": "train:norm_edit_dis", "Regex": _TRAIN + _key("norm_edit_dis") + NUMBER},
    {"Name": "train:lr", "Regex": _TRAIN + _key("lr") + NUMBER},
    {"Name": "train:samples_per_sec", "Regex": _TRAIN + r", ips: " + NUMBER + r" samples/s"},
    {"Name": "train:batch_cost_sec", "Regex": _TRAIN + r", avg_batch_cost: " + NUMBER + r" s"},
    {"Name": "train:reader_cost_sec", "Regex": _TRAIN + r", avg_reader_cost: " + NUMBER + r" s"},
    {"Name": "train:ctc_loss", "Regex": _TRAIN + _key("CTCLoss") + NUMBER},
    {"Name": "train:nrtr_loss", "Regex": _TRAIN + _key("NRTRLoss") + NUMBER},
    {"Name": "train:epoch", "Regex": r"epoch: \[([0-9]+)/[0-9]+\], global_step: [0-9]+,"},
    {"Name": "train:global_step", "Regex": r"epoch: \[[0-9]+/[0-9]+\], global_step: ([0-9]+),"},
    # GPU only (print_mem_info): "..., eta: 0:10:00, max_mem_reserved: 5120 MB, max_mem_allocated: 4096 MB"
    {"Name": "train:gpu_mem_reserved_mb", "Regex": _TRAIN + r", max_mem_reserved: ([0-9]+) MB"},
    {"Name": "train:gpu_mem_allocated_mb", "Regex": _TRAIN + r" max_mem_allocated: ([0-9]+) MB"},
    {"Name": "eval:acc", "Regex": _EVAL + _key("acc") + NUMBER},
    {"Name": "eval:norm_edit_dis", "Regex": _EVAL + _key("norm_edit_dis") + NUMBER},
    {"Name": "eval:fps", "Regex": _EVAL + _key("fps") + NUMBER},
    {"Name": "eval:best_acc", "Regex": _BEST + _key("acc") + NUMBER},
]


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
