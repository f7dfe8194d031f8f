"""`rectrain monitor`: a run folder, a metrics file or an s3:// prefix; live follow; curves."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, List

import pytest

from rectrain.cli.main import main
from rectrain.monitor.follow import monitor_recognition_training_progress
from rectrain.runlog.records import MetricsWriter, parse_log

FIXTURE = Path(__file__).resolve().parents[1] / "training" / "fixtures" / "engine-2.10-cpu-train.log"


def _run_dir(tmp_path: Path, status: str = "completed") -> Path:
    run = tmp_path / "run"
    with MetricsWriter(run / "metrics.jsonl") as writer:
        writer.write(parse_log(FIXTURE.read_text(encoding="utf-8").splitlines()))
    (run / "run-state.json").write_text(json.dumps({"status": status, "sub_epochs": 1,
                                                    "best_metric": 0.0}), encoding="utf-8")
    return run


def test_summary_and_plot_of_a_finished_run(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    summary = monitor_recognition_training_progress(run, plot=tmp_path / "curves.png")
    assert summary["status"] == "completed"
    assert summary["global_step"] == 8 and summary["epoch"] == 2 and summary["epochs"] == 2
    assert summary["evals"] == 2 and summary["last_eval_acc"] == 0.0
    assert summary["loss"] == 71.279617
    png = (tmp_path / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_follow_shows_records_as_they_are_appended(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, status="running")
    seen: List[dict] = []

    def writer() -> None:
        time.sleep(0.3)
        with MetricsWriter(run / "metrics.jsonl") as w:
            w.write([{"type": "train", "global_step": 9, "epoch": 3, "loss": 1.0}])
        time.sleep(0.3)
        (run / "run-state.json").write_text(json.dumps({"status": "completed"}), encoding="utf-8")

    thread = threading.Thread(target=writer)
    thread.start()
    summary = monitor_recognition_training_progress(run, follow=True, display="none", poll_s=0.1,
                                                    timeout_s=30, on_record=seen.append)
    thread.join()
    assert [r["global_step"] for r in seen] == [9]
    assert summary["status"] == "completed" and summary["global_step"] == 9


def test_monitor_an_s3_run(tmp_path: Path, s3_client: Any, s3_bucket: str, s3_env: dict, capsys) -> None:
    run = _run_dir(tmp_path)
    for name in ("metrics.jsonl", "run-state.json"):
        s3_client.upload_file(str(run / name), s3_bucket, f"runs/x/{name}")
    summary = monitor_recognition_training_progress(f"s3://{s3_bucket}/runs/x")
    assert summary["global_step"] == 8 and summary["status"] == "completed"
    assert main(["--log-format", "json", "monitor", f"s3://{s3_bucket}/runs/x",
                 "--plot", str(tmp_path / "c.png")]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["global_step"] == 8 and Path(out["plot"]).is_file()


def test_an_s3_error_is_an_error_not_nothing_there_yet(s3_server: Any, s3_bucket: str) -> None:
    """Only "not found" means "not uploaded yet"; a refused request stops `monitor --follow`
    with the action and the fix instead of polling forever."""
    from rectrain.errors import StorageError
    from rectrain.monitor.follow import RunSource
    from rectrain.storage.service import S3Service

    source = RunSource(f"s3://{s3_bucket}/not-yet", s3_server.service())
    assert source.read() == ([], None)  # nothing uploaded yet: not an error
    wrong = S3Service(s3_server.endpoint_url, access_key=s3_server.access_key, secret_key="wrong-secret")
    with pytest.raises(StorageError, match="s3:GetObject"):
        RunSource(f"s3://{s3_bucket}/not-yet", wrong).read()
