"""One reader of the engine's log: every SageMaker MetricDefinitions regex reads, on real engine
output (PaddleOCR 2.10 tools/train.py on the CPU, captured in the fixtures), exactly the value
that rectrain's parser records for metrics.jsonl, and on the same lines."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Dict, List

import pytest

from rectrain.engine.log import parse_line
from rectrain.sagemaker.metric_definitions import ENGINE_METRICS, parse_metrics

TESTS = Path(__file__).resolve().parents[1]
REAL_LOGS = [
    TESTS / "training" / "fixtures" / "engine-2.10-cpu-train.log",  # crnn-mv3: CTC, evals, saves
    TESTS / "training" / "fixtures" / "engine-2.10-cpu-resume.log",  # a resumed run
    TESTS / "sagemaker" / "fixtures" / "engine_th_ppocrv5_cpu.log",  # official Thai: CTC + NRTR
]
# what the engine adds on a CUDA build (tools/program.py print_mem_info), on a real line
GPU_LINE = ("[2026/11/25 20:00:00] ppocr INFO: epoch: [3/50], global_step: 300, lr: 0.000480, "
            "acc: 0.512000, norm_edit_dis: 0.801234, CTCLoss: 3.1, NRTRLoss: 0.9, loss: 4.012345, "
            "avg_reader_cost: 0.00100 s, avg_batch_cost: 0.25000 s, avg_samples: 128.0, "
            "ips: 512.00000 samples/s, eta: 1:02:03, max_mem_reserved: 10240 MB, "
            "max_mem_allocated: 9000 MB")


def _lines() -> List[str]:
    out: List[str] = []
    for path in REAL_LOGS:
        assert path.is_file(), path
        out += path.read_text(encoding="utf-8").replace("\r", "\n").splitlines()
    return out + [GPU_LINE]


@pytest.mark.parametrize("metric", ENGINE_METRICS, ids=lambda m: m.name)
def test_each_regex_reads_what_the_parser_records(metric) -> None:  # noqa: ANN001
    matched = 0
    for line in _lines():
        record = parse_line(line)
        found = parse_metrics(line, [metric.definition()])
        parsed = record.get(metric.record_key) if record and record["type"] == metric.line else None
        if isinstance(parsed, bool) or not isinstance(parsed, (int, float)) or \
                (isinstance(parsed, float) and math.isnan(parsed)):
            parsed = None  # the parser keeps non-numbers as text; SageMaker records numbers only
        if metric.name not in found:
            assert parsed is None, f"{metric.name} misses {parsed!r} the parser reads on:\n{line}"
            continue
        matched += 1
        assert parsed is not None, f"{metric.name} reads {found[metric.name]} on a line the " \
                                   f"parser gives no {metric.record_key}:\n{line}"
        assert found[metric.name] == pytest.approx(float(parsed), rel=1e-12), line
    assert matched > 0, f"{metric.name} matched no line of the real logs"


def test_every_value_the_parser_records_has_a_metric_or_is_bookkeeping() -> None:
    """The numbers of a training or evaluation line are all SageMaker metrics, except the
    ones that only describe the log (epochs count, samples, eta)."""
    covered: Dict[str, set] = {}
    for metric in ENGINE_METRICS:
        covered.setdefault(metric.line, set()).add(metric.record_key)
    bookkeeping = {"train": {"type", "engine_epochs", "samples", "eta_s", "engine_time"},
                   "eval": {"type", "engine_time"}}
    for line in _lines():
        record = parse_line(line)
        if record is None or record["type"] not in bookkeeping:
            continue
        numbers = {k for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        missing = numbers - covered[record["type"]] - bookkeeping[record["type"]]
        assert not missing, (missing, line)


def test_no_line_is_two_kinds_and_config_dumps_match_nothing() -> None:
    for line in _lines():
        found = parse_metrics(line)
        kinds = {name.split(":")[0] for name in found}
        assert len(kinds) <= 1, line
        if not re.search(r"global_step:|metric,", line):
            assert found == {}, line
