"""What the user sees while training: a live rich panel, plain streamed lines, or JSON lines.

``rich``  a live panel (epoch/step progress, loss, acc, samples/s, ETA, best, GPU memory) with
          the engine's warnings, errors and checkpoint saves printed above it;
``plain`` every engine line as it comes (logs, CI, SageMaker/CloudWatch; the default when
          stdout is not a terminal);
``json``  one JSON object per metric record on stdout (``--log-format json``);
``none``  nothing (train.log and metrics.jsonl are still written).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Dict, Optional, TextIO

from rectrain.machine.gpu import query_gpus
from rectrain.runlog.records import strip_line


def _fmt_eta(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


def _num(value: Any, digits: int = 4) -> str:
    if isinstance(value, (int, float)):
        return f"{value:.{digits}g}" if isinstance(value, float) else str(value)
    return "-" if value is None else str(value)


class Display:
    """Base: does nothing."""

    def start(self, title: str, info: Optional[Dict[str, Any]] = None) -> None:
        pass

    def line(self, raw: str) -> None:
        pass

    def record(self, record: Dict[str, Any]) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def update(self, **values: Any) -> None:
        pass

    def stop(self) -> None:
        pass


class PlainDisplay(Display):
    def __init__(self, stream: Optional[TextIO] = None) -> None:
        self.stream = stream or sys.stdout

    def line(self, raw: str) -> None:
        self.stream.write(raw if raw.endswith("\n") else raw + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        self.line(f"[rectrain] {text}")


class JsonDisplay(Display):
    def __init__(self, stream: Optional[TextIO] = None) -> None:
        self.stream = stream or sys.stdout

    def record(self, record: Dict[str, Any]) -> None:
        self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        self.record({"type": "message", "message": text,
                     "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


class RichDisplay(Display):
    """A live panel refreshed a few times a second; GPU memory from NVML every few seconds."""

    GPU_EVERY_S = 5.0

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console

        self.console = console or Console()
        self.live: Any = None
        self.state: Dict[str, Any] = {}
        self.title = "training"
        self._gpu_text = ""
        self._gpu_at = 0.0
        self._in_traceback = False

    def start(self, title: str, info: Optional[Dict[str, Any]] = None) -> None:
        from rich.live import Live

        self.title = title
        self.state.update(info or {})
        self.live = Live(self._render(), console=self.console, refresh_per_second=4,
                         transient=False)
        self.live.start()

    def _gpu(self) -> str:
        now = time.monotonic()
        if now - self._gpu_at >= self.GPU_EVERY_S:
            self._gpu_at = now
            try:
                report = query_gpus()
                self._gpu_text = "  ".join(f"GPU{g.index} {g.memory_used_mb}/{g.memory_total_mb} MB"
                                           for g in report.gpus)
            except Exception:  # noqa: BLE001 - the display never breaks a run
                self._gpu_text = ""
        return self._gpu_text

    def _render(self) -> Any:
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        s = self.state
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan")
        table.add_column()
        step = s.get("global_step")
        total = s.get("total_steps")
        epoch, epochs = s.get("epoch"), s.get("epochs")
        table.add_row("epoch", f"{_num(epoch)}/{_num(epochs)}"
                      + (f"  (sub-epoch {s['engine_epoch']}/{s['engine_epochs']})"
                         if s.get("sub_epochs", 1) > 1 and s.get("engine_epoch") else ""))
        table.add_row("step", f"{_num(step)}" + (f"/{total}" if total else ""))
        if total and isinstance(step, int):
            table.add_row("", ProgressBar(total=float(total), completed=float(min(step, total)),
                                          width=40))
        table.add_row("loss", _num(s.get("loss")))
        table.add_row("train acc", _num(s.get("acc")))
        table.add_row("lr", _num(s.get("lr")))
        table.add_row("samples/s", _num(s.get("ips"), 5))
        table.add_row("ETA", _fmt_eta(s.get("eta_s")))
        table.add_row("eval acc", f"{_num(s.get('eval_acc'))}   best {_num(s.get('best_acc'))}"
                      + (f" (step {s['best_step']})" if s.get("best_step") else ""))
        if s.get("last_checkpoint"):
            table.add_row("checkpoint", str(s["last_checkpoint"]))
        gpu = self._gpu()
        if gpu:
            table.add_row("GPU memory", gpu)
        return Panel(table, title=self.title, expand=False)

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(self._render())

    def line(self, raw: str) -> None:
        parts = strip_line(raw)
        text = parts["text"] or ""
        level = parts["level"]
        if text.startswith("Traceback"):
            self._in_traceback = True
        show = (level in ("WARNING", "ERROR", "CRITICAL") and "encryption module" not in text) \
            or self._in_traceback or "Error" in text.split(":", 1)[0]
        if show and self.live is not None:
            self.live.console.print(text, markup=False, highlight=False)
        if level is not None:
            self._in_traceback = False
        self._refresh()

    def record(self, record: Dict[str, Any]) -> None:
        kind = record.get("type")
        s = self.state
        for key in ("epoch", "epochs", "engine_epoch", "global_step"):
            if key in record:
                s[key] = record[key]
        if record.get("engine_epochs"):
            s["engine_epochs"] = record["engine_epochs"]
        if kind == "train":
            for key in ("loss", "acc", "lr", "ips", "eta_s"):
                if key in record:
                    s[key] = record[key]
        elif kind == "eval":
            s["eval_acc"] = record.get("acc")
            best = record.get("best_acc")
            if isinstance(best, (int, float)):  # the run's best (the engine forgets it on resume)
                s["best_acc"] = max(best, s.get("best_acc") or 0.0)
            if record.get("saved_best") and best == s.get("best_acc"):
                s["best_step"] = record.get("global_step")
        elif kind == "save":
            s["last_checkpoint"] = f"{record.get('name')} @ step {record.get('global_step')}"
            if self.live is not None:
                self.live.console.print(f"saved checkpoint {record.get('name')} "
                                        f"(step {record.get('global_step')})", style="green")
        self._refresh()

    def message(self, text: str) -> None:
        if self.live is not None:
            self.live.console.print(f"[rectrain] {text}", markup=False, highlight=False)
        else:
            self.console.print(f"[rectrain] {text}", markup=False, highlight=False)

    def update(self, **values: Any) -> None:
        self.state.update(values)
        self._refresh()

    def stop(self) -> None:
        if self.live is not None:
            self._refresh()
            self.live.stop()
            self.live = None


def make_display(kind: str = "rich", stream: Optional[TextIO] = None) -> Display:
    """``rich`` falls back to ``plain`` when stdout is not a terminal."""
    out = stream or sys.stdout
    if kind == "json":
        return JsonDisplay(out)
    if kind in ("none", "quiet", None):
        return Display()
    if kind == "plain" or not getattr(out, "isatty", lambda: False)():
        return PlainDisplay(out)
    return RichDisplay()
