"""`rectrain runs compare` on two real tiny training runs (the engine on the CPU): one as a run
folder, one as an s3:// prefix on the real SeaweedFS server (the files the runner uploads
beside the checkpoints). The table names the config difference and the results; the overlay
figure is a real PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
from PIL import Image
from training.conftest import engine, make_config, tiny_data  # noqa: F401 - fixtures

from rectrain.cli.main import main
from rectrain.monitor.compare import compare_runs, format_comparison
from rectrain.training.runner import start_recognition_training


@pytest.mark.slow
def test_compare_two_real_runs(engine: Any, make_config: Callable[..., Path], tmp_path: Path,  # noqa: F811
                               s3_client: Any, s3_bucket: str, s3_server: Any, s3_env: Any,
                               capsys: pytest.CaptureFixture) -> None:
    a, b = tmp_path / "lr-small", tmp_path / "lr-big"
    start_recognition_training(make_config("a.yml", epochs=1, lr=0.001), a, device="cpu", display="none")
    start_recognition_training(make_config("b.yml", epochs=2, lr=0.005), b, device="cpu", display="none")
    for name in ("metrics.jsonl", "run-state.json", "config.yml"):
        s3_client.upload_file(str(b / name), s3_bucket, f"runs/lr-big/{name}")
    s3 = f"s3://{s3_bucket}/runs/lr-big"

    comparison = compare_runs([str(a), s3], endpoint_url=s3_server.endpoint_url)
    left, right = comparison["runs"]
    assert (left["kind"], right["kind"]) == ("folder", "s3")
    assert (left["steps"], right["steps"]) == (4, 8)
    assert left["status"] == right["status"] == "completed"
    assert left["best_eval_acc"] is not None and right["best_step"] in (4, 8)
    assert left["train_seconds"] > 0 and right["final_loss"] > 0
    diffs = comparison["config_differences"]
    assert diffs["Optimizer.lr.learning_rate"] == [0.001, 0.005]
    assert diffs["Global.epoch_num"] == [1, 2]
    assert "Architecture.algorithm" not in diffs  # equal fields are left out
    table = format_comparison(comparison)
    assert "| `Optimizer.lr.learning_rate` | 0.001 | 0.005 |" in table
    assert "| steps | 4 | 8 |" in table

    out = tmp_path / "cmp"
    code = main(["runs", "compare", str(a), s3, "--out", str(out), "--endpoint-url",
                 s3_server.endpoint_url])
    assert code == 0
    printed = capsys.readouterr().out
    assert "best eval acc" in printed and "compare.png" in printed
    with Image.open(out / "compare.png") as img:
        assert img.size[0] > 600 and img.size[1] > 200
    assert "![curves](compare.png)" in (out / "compare.md").read_text(encoding="utf-8")
    data = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    assert [r["run"] for r in data["runs"]] == ["lr-small", "lr-big"]


def test_compare_refuses_one_run_and_unknown_sources(tmp_path: Path) -> None:
    from rectrain.errors import UserError

    with pytest.raises(UserError, match="at least two"):
        compare_runs([str(tmp_path)])
    with pytest.raises(UserError, match="no metrics.jsonl"):
        compare_runs([str(tmp_path), str(tmp_path)])
    with pytest.raises(UserError, match="not a run folder"):
        compare_runs(["no/such/run", "neither/this"])
