"""`rectrain runs compare` on two real tiny training runs (the engine on the CPU): one as a run
folder, one as an s3:// prefix on the real SeaweedFS server (the files the runner uploads
beside the checkpoints). The table names the config difference and the results; the overlay
figure is a real PNG."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest
from botocore.stub import Stubber
from PIL import Image
from training.conftest import engine, make_config, tiny_data  # noqa: F401 - fixtures

from rectrain.cli.main import main
from rectrain.runs.compare import compare_runs, format_comparison
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

    # a SageMaker job: its hyperparameters and cost from the control plane (botocore's Stubber
    # on a real client), its metrics from its checkpoint prefix where the container mirrors them
    for name in ("metrics.jsonl", "run-state.json"):
        s3_client.upload_file(str(a / name), s3_bucket, f"jobs/ckpt/run/{name}")
    job = "thai-rec-20261130-101500"
    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    t0 = dt.datetime(2026, 11, 30, 10, 15, tzinfo=dt.timezone.utc)
    described = {
        "TrainingJobName": job,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{job}",
        "TrainingJobStatus": "Completed", "SecondaryStatus": "Completed", "CreationTime": t0,
        "AlgorithmSpecification": {
            "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/rectrain:0.1.0",
            "TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200},
        "EnableManagedSpotTraining": True, "TrainingTimeInSeconds": 600, "BillableTimeInSeconds": 180,
        "CheckpointConfig": {"S3Uri": f"s3://{s3_bucket}/jobs/ckpt", "LocalPath": "/opt/ml/checkpoints"},
        "ModelArtifacts": {"S3ModelArtifacts": ""},
        "HyperParameters": {"preset": "crnn-mv3", "lr": "0.002", "_tuning_objective_metric": "eval:acc"}}
    with Stubber(sm) as stub:
        for _ in range(2):
            stub.add_response("describe_training_job", described, {"TrainingJobName": job})
        three = compare_runs([str(a), s3, job], endpoint_url=s3_server.endpoint_url, sagemaker_client=sm)
    sagemaker = three["runs"][2]
    assert sagemaker["kind"] == "sagemaker-job" and sagemaker["steps"] == 4
    assert sagemaker["cost_usd"] == pytest.approx(180 / 3600 * 1.408)
    assert three["config_differences"]["hyperparameters.lr"] == [None, None, "0.002"]

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
