"""status / logs / stop / download. The SageMaker and CloudWatch control plane is faked ONLY
behind the real boto3 calls (botocore Stubber on real clients; the Stubber validates every
request and response against the service model). S3 is real (SeaweedFS)."""

from __future__ import annotations

import datetime as dt
import io
import tarfile

import boto3
import pytest
from botocore.stub import Stubber

from rectrain.errors import EXIT_ENGINE_FAILED, EXIT_OK, UserError
from rectrain.sagemaker.follow import describe_job, download_job, follow_job, format_status, stop_job
from rectrain.sagemaker.pricing import estimate_cost

JOB = "thai-rec-20261125-200000"
T0 = dt.datetime(2026, 11, 25, 20, 0, tzinfo=dt.timezone.utc)


def _sm():
    return boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x",
                        aws_secret_access_key="x")


def _logs():
    return boto3.client("logs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def _describe(status="InProgress", secondary="Training", **extra):
    d = {
        "TrainingJobName": JOB,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{JOB}",
        "TrainingJobStatus": status, "SecondaryStatus": secondary,
        "AlgorithmSpecification": {
            "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/rectrain:0.1.0",
            "TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
        "StoppingCondition": {"MaxRuntimeInSeconds": 43200, "MaxWaitTimeInSeconds": 86400},
        "CreationTime": T0,
        "EnableManagedSpotTraining": True,
        "CheckpointConfig": {"S3Uri": "s3://b/ckpt", "LocalPath": "/opt/ml/checkpoints"},
        "OutputDataConfig": {"S3OutputPath": "s3://b/out"},
        "ModelArtifacts": {"S3ModelArtifacts": ""},
        "SecondaryStatusTransitions": [
            {"Status": "Starting", "StartTime": T0, "StatusMessage": "Preparing the instances for training"},
            {"Status": "Training", "StartTime": T0 + dt.timedelta(minutes=4),
             "StatusMessage": "Training image download completed. Training in progress."}],
    }
    d.update(extra)
    return d


def test_status_with_cost_and_spot_savings():
    sm = _sm()
    with Stubber(sm) as stub:
        stub.add_response("describe_training_job", _describe(
            "Completed", "Completed", TrainingTimeInSeconds=3600, BillableTimeInSeconds=1080,
            FinalMetricDataList=[{"MetricName": "eval:acc", "Value": 0.91, "Timestamp": T0}],
            ModelArtifacts={"S3ModelArtifacts": f"s3://b/out/{JOB}/output/model.tar.gz"}),
            {"TrainingJobName": JOB})
        status = describe_job(JOB, sm)
    assert status.status == "Completed" and status.exit_code == EXIT_OK
    assert status.metrics == {"eval:acc": pytest.approx(0.91)}
    assert status.cost is not None
    assert status.cost.cost_usd == pytest.approx(1080 / 3600 * 1.408)
    assert status.cost.spot_savings_pct == pytest.approx(70.0)
    text = format_status(status)
    assert "spot saved 70%" in text and "eval:acc = 0.91" in text and "Training in progress" in text
    assert "model.tar.gz" in text


def test_unknown_job_is_a_user_error():
    sm = _sm()
    with Stubber(sm) as stub:
        stub.add_client_error("describe_training_job", service_error_code="ValidationException",
                              service_message="Requested resource not found.", http_status_code=400)
        with pytest.raises(UserError, match="not found"):
            describe_job("nope", sm)


def test_follow_streams_every_host_until_the_end():
    sm, logs = _sm(), _logs()
    ms = int(T0.timestamp() * 1000)
    line = ("[2026/11/25 20:05:00] ppocr INFO: epoch: [1/5], global_step: 10, lr: 0.000500, "
            "acc: 0.100000, norm_edit_dis: 0.500000, loss: 12.500000, avg_reader_cost: 0.01 s, "
            "avg_batch_cost: 0.2 s, avg_samples: 64.0, ips: 320.00000 samples/s, eta: 0:10:00")
    prefix = {"logGroupName": "/aws/sagemaker/TrainingJobs", "logStreamNamePrefix": f"{JOB}/",
              "interleaved": True}
    with Stubber(sm) as s_sm, Stubber(logs) as s_logs:
        s_sm.add_response("describe_training_job", _describe(), {"TrainingJobName": JOB})
        s_logs.add_response("filter_log_events", {
            "events": [{"logStreamName": f"{JOB}/algo-1-1764100000", "timestamp": ms, "message": line,
                        "eventId": "1"},
                       {"logStreamName": f"{JOB}/algo-2-1764100000", "timestamp": ms + 1,
                        "message": "host 2 ready", "eventId": "2"}],
            "nextToken": "page2"}, prefix)
        s_logs.add_response("filter_log_events", {"events": [
            {"logStreamName": f"{JOB}/algo-1-1764100000", "timestamp": ms + 2, "message": "more",
             "eventId": "3"}]}, {**prefix, "nextToken": "page2"})
        s_sm.add_response("describe_training_job", _describe(
            "Failed", "Failed", FailureReason="ConfigError: bad epochs", TrainingTimeInSeconds=600,
            BillableTimeInSeconds=600), {"TrainingJobName": JOB})
        s_logs.add_response("filter_log_events", {"events": [
            {"logStreamName": f"{JOB}/algo-1-1764100000", "timestamp": ms + 2, "message": "more",
             "eventId": "3"},
            {"logStreamName": f"{JOB}/algo-1-1764100000", "timestamp": ms + 5, "message": "the end",
             "eventId": "4"}]}, {**prefix, "startTime": ms + 2})
        s_logs.add_response("filter_log_events", {"events": []}, {**prefix, "startTime": ms + 5})
        seen, states, sleeps = [], [], []
        final = follow_job(JOB, sagemaker_client=sm, logs_client=logs, on_line=seen.append,
                           on_status=states.append, sleep=sleeps.append, poll_seconds=7)
        s_sm.assert_no_pending_responses()
        s_logs.assert_no_pending_responses()
    assert [e.message for e in seen] == [line, "host 2 ready", "more", "the end"]  # no duplicate
    assert [e.host for e in seen[:2]] == ["algo-1", "algo-2"]
    assert [s.status for s in states] == ["InProgress", "Failed"]
    assert sleeps == [7]
    assert final.exit_code == EXIT_ENGINE_FAILED and final.failure_reason == "ConfigError: bad epochs"


def test_logs_before_the_job_starts_are_empty():
    sm, logs = _sm(), _logs()
    with Stubber(sm) as s_sm, Stubber(logs) as s_logs:
        s_sm.add_response("describe_training_job", _describe("InProgress", "Starting"),
                          {"TrainingJobName": JOB})
        s_logs.add_client_error("filter_log_events", service_error_code="ResourceNotFoundException",
                                service_message="The specified log group does not exist.")
        final = follow_job(JOB, sagemaker_client=sm, logs_client=logs, follow=False,
                           on_line=lambda e: None, on_status=lambda s: None)
    assert final.secondary_status == "Starting"


def test_stop():
    sm = _sm()
    with Stubber(sm) as stub:
        stub.add_response("stop_training_job", {}, {"TrainingJobName": JOB})
        stop_job(JOB, sm)
        stub.assert_no_pending_responses()


def test_download_model_and_checkpoints_from_real_s3(s3, s3_client, s3_bucket, tmp_path):
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w:gz") as tar:
        for name, data in (("model.json", b'{"format": "x"}'), ("inference.pdiparams", b"\0" * 64)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    s3_client.put_object(Bucket=s3_bucket, Key=f"out/{JOB}/output/model.tar.gz", Body=payload.getvalue())
    s3_client.put_object(Bucket=s3_bucket, Key="ckpt/latest.pdparams", Body=b"p" * 10)
    s3_client.put_object(Bucket=s3_bucket, Key="ckpt/run/metrics.jsonl", Body=b"{}\n")
    sm = _sm()
    with Stubber(sm) as stub:
        stub.add_response("describe_training_job", _describe(
            "Completed", "Completed",
            ModelArtifacts={"S3ModelArtifacts": f"s3://{s3_bucket}/out/{JOB}/output/model.tar.gz"},
            CheckpointConfig={"S3Uri": f"s3://{s3_bucket}/ckpt", "LocalPath": "/opt/ml/checkpoints"}),
            {"TrainingJobName": JOB})
        written = download_job(JOB, str(tmp_path / "dl"), sagemaker_client=sm, s3=s3,
                               checkpoints=True)
    assert (tmp_path / "dl" / "model" / "model.json").read_bytes() == b'{"format": "x"}'
    assert (tmp_path / "dl" / "checkpoints" / "latest.pdparams").read_bytes() == b"p" * 10
    assert (tmp_path / "dl" / "checkpoints" / "run" / "metrics.jsonl").is_file()
    assert "model.tar.gz" in written and "checkpoints" in written


def test_cost_estimates():
    on_demand = estimate_cost("ml.g5.xlarge", 2, 1800, None, spot=False)
    assert on_demand.cost_usd == pytest.approx(2 * 0.5 * 1.408) and on_demand.spot_savings_pct is None
    unknown = estimate_cost("ml.g6e.48xlarge", 1, 100, 100, spot=False)
    assert unknown.cost_usd is None and "no price" in unknown.describe()
