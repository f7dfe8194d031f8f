"""The live display (rich), JSON lines, and the curves, fed with records parsed from real
engine output."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from rectrain.runlog.display import JsonDisplay, PlainDisplay, RichDisplay, make_display
from rectrain.runlog.plots import continuous, plot_curves
from rectrain.runlog.records import parse_log

LOG = Path(__file__).resolve().parents[1] / "training" / "fixtures" / "engine-2.10-cpu-train.log"


def _lines() -> list:
    return LOG.read_text(encoding="utf-8").splitlines(keepends=True)


def test_rich_panel_shows_progress_and_engine_warnings() -> None:
    out = io.StringIO()
    disp = RichDisplay(Console(file=out, force_terminal=True, width=100))
    disp.start("rectrain train tiny.yml (cpu)", {"epochs": 2})
    disp.update(total_steps=8)
    for line in _lines():
        disp.line(line)
    for record in parse_log(_lines()):
        disp.record(record)
    disp.line("[2026/11/25 20:00:00] ppocr WARNING: something to know\n")
    disp.stop()
    text = out.getvalue()
    assert "8/8" in text and "71.28" in text and "samples/s" in text  # step, loss, speed
    assert "something to know" in text and "saved checkpoint latest" in text
    assert "Architecture" not in text  # the engine's config dump is not echoed


def test_json_and_plain_output() -> None:
    out = io.StringIO()
    disp = JsonDisplay(out)
    for record in parse_log(_lines()):
        disp.record(record)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["global_step"] for r in rows if r["type"] == "train"] == list(range(1, 9))
    out = io.StringIO()
    plain = PlainDisplay(out)
    plain.line("[2026/11/25 20:00:00] ppocr INFO: epoch: [1/2], global_step: 1")
    assert out.getvalue().endswith("global_step: 1\n")
    assert isinstance(make_display("rich", io.StringIO()), PlainDisplay)  # not a terminal


def test_continuous_history_and_curves(tmp_path: Path) -> None:
    records = [{"type": "train", "global_step": s, "segment": 0, "loss": 10.0 - s, "lr": 0.1}
               for s in range(1, 7)]
    records.append({"type": "resume", "global_step": 4, "segment": 1})
    records += [{"type": "train", "global_step": s, "segment": 1, "loss": 5.0, "lr": 0.1}
                for s in range(5, 9)]
    steps = [(r["global_step"], r["segment"]) for r in continuous(records) if r["type"] == "train"]
    assert steps == [(1, 0), (2, 0), (3, 0), (4, 0), (5, 1), (6, 1), (7, 1), (8, 1)]
    png = plot_curves(records, tmp_path / "c.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
