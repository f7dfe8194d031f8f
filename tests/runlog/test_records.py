"""The log parser, on real engine output captured from PaddleOCR 2.10 (unstructured-paddleocr)
runs: a first run and the start of a resumed run (tests/training/fixtures/)."""

from __future__ import annotations

import json
from pathlib import Path

from rectrain.engine.log import eta_seconds, parse_line
from rectrain.runlog.records import MetricsTracker, MetricsWriter, parse_log, read_metrics

FIXTURES = Path(__file__).resolve().parents[1] / "training" / "fixtures"


def _log(name: str) -> list:
    return (FIXTURES / name).read_text(encoding="utf-8").splitlines(keepends=True)


def test_real_log_train_records_are_complete_and_continuous() -> None:
    records = parse_log(_log("engine-2.10-cpu-train.log"))
    train = [r for r in records if r["type"] == "train"]
    assert [r["global_step"] for r in train] == list(range(1, 9))
    assert [r["epoch"] for r in train] == [1, 1, 1, 1, 2, 2, 2, 2]
    first = train[0]
    assert first["epochs"] == 2
    assert first["lr"] == 0.001
    assert first["loss"] == 72.388771
    assert first["acc"] == 0.0 and first["norm_edit_dis"] == 0.118453
    assert first["reader_cost_s"] == 0.01124 and first["batch_cost_s"] == 0.17299
    assert first["ips"] == 23.12284 and first["eta_s"] == 1
    assert first["engine_time"] == "2026-11-25 19:39:43"
    for record in records:  # every record: numeric epoch and step
        assert isinstance(record["epoch"], int) and isinstance(record["global_step"], int)


def test_real_log_eval_records_carry_step_and_best() -> None:
    records = parse_log(_log("engine-2.10-cpu-train.log"))
    evals = [r for r in records if r["type"] == "eval"]
    assert [(r["global_step"], r["epoch"]) for r in evals] == [(4, 1), (8, 2)]
    assert evals[0]["acc"] == 0.0
    assert abs(evals[0]["norm_edit_dis"] - 1.249998437424793e-06) < 1e-12
    assert evals[0]["best_acc"] == 0.0 and evals[0]["best_epoch"] == 1
    assert evals[0]["saved_best"] is True
    saves = [(r["name"], r["global_step"]) for r in records if r["type"] == "save"]
    assert saves[:3] == [("best_accuracy", 4), ("latest", 4), ("iter_epoch_1", 4)]


def test_real_resumed_log_with_sub_epochs() -> None:
    # segment 1 of a run with K=2 sub-epochs, resumed from step 18 (engine epoch 9)
    tracker = MetricsTracker(sub_epochs=2, segment=1, global_step=18, engine_epoch=9)
    records = []
    for line in _log("engine-2.10-cpu-resume.log"):
        records += tracker.feed(line)
    records += tracker.flush()
    train = [r for r in records if r["type"] == "train"]
    assert train[0]["global_step"] == 19 and train[0]["engine_epoch"] == 10
    assert train[0]["epoch"] == 5 and train[0]["epochs"] == 40
    assert all(r["segment"] == 1 for r in records)
    evals = [r for r in records if r["type"] == "eval"]
    assert evals and "best_global_step" not in evals[0] and "best_start_epoch" not in evals[0]


def test_prefixes_ansi_and_odd_values() -> None:
    line = ("\x1b[32m[2026/11/25 20:00:00] ppocr INFO: epoch: [3/100], global_step: 1200, "
            "lr: 0.000500, acc: 0.812500, norm_edit_dis: 0.950000, loss: nan, loss_ctc: 1.5, "
            "avg_reader_cost: 0.00100 s, avg_batch_cost: 0.20000 s, avg_samples: 64.0, "
            "ips: 320.00000 samples/s, eta: 1 day, 2:03:04, max_mem_reserved: 5120 MB, "
            "max_mem_allocated: 4000 MB\x1b[0m\n")
    record = parse_line(line)
    assert record is not None and record["type"] == "train"
    assert record["global_step"] == 1200 and record["engine_epoch"] == 3
    assert record["loss"] == "nan"  # JSON has no NaN: kept visible as text
    assert record["loss_ctc"] == 1.5
    assert record["eta_s"] == 86400 + 2 * 3600 + 3 * 60 + 4
    assert record["gpu_mem_reserved_mb"] == 5120 and record["gpu_mem_allocated_mb"] == 4000
    assert eta_seconds("eta: 0:10:00") == 600
    assert parse_line("[2026/11/25 20:00:00] ppocr INFO: Initialize indexes of datasets") is None
    assert parse_line("eval model:: 100%|##########| 2/2") is None


def test_writer_appends_never_truncates(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    with MetricsWriter(path) as writer:
        writer.write([{"type": "train", "global_step": 1, "epoch": 1}])
    with MetricsWriter(path) as writer:  # a resumed segment
        writer.write([{"type": "train", "global_step": 2, "epoch": 1}])
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"type": "train", "glo')  # a torn line of a writer killed mid-write
    records = read_metrics(path)
    assert [r["global_step"] for r in records] == [1, 2]
    assert json.loads(path.read_text(encoding="utf-8").splitlines()[0])["global_step"] == 1
