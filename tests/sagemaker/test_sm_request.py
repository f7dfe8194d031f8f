"""The CreateTrainingJob request: built from a job config, validated against botocore's own
SageMaker service model (bundled, no network)."""

from __future__ import annotations

import copy
import json

import botocore.session
import pytest
from botocore.validate import ParamValidator
from sm_helpers import IMAGE, NOW, ROLE, job_dict

from rectrain.errors import ConfigError
from rectrain.sagemaker.jobconfig import job_config_from_dict
from rectrain.sagemaker.request import (
    build_training_job_request,
    job_name,
    request_json,
    request_problems,
)


def _shape():
    model = botocore.session.get_session().get_service_model("sagemaker")
    return model.operation_model("CreateTrainingJob").input_shape


def _botocore_errors(request):
    report = ParamValidator().validate(request, _shape())
    return report.generate_report() if report.has_errors() else ""


def test_minimal_on_demand_request_is_valid_for_botocore():
    request = build_training_job_request(job_config_from_dict(job_dict()), NOW)
    assert _botocore_errors(request) == ""
    assert request_problems(request) == []
    assert request["TrainingJobName"] == "thai-rec-20261125-200000"
    assert request["RoleArn"] == ROLE
    assert request["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert request["AlgorithmSpecification"]["TrainingInputMode"] == "File"
    assert request["EnableManagedSpotTraining"] is False
    assert "MaxWaitTimeInSeconds" not in request["StoppingCondition"]
    assert request["StoppingCondition"]["MaxRuntimeInSeconds"] == 24 * 3600
    assert request["CheckpointConfig"] == {
        "S3Uri": "s3://rec-bucket/rectrain/jobs/thai-rec-20261125-200000/checkpoints",
        "LocalPath": "/opt/ml/checkpoints"}
    channels = {c["ChannelName"]: c for c in request["InputDataConfig"]}
    assert set(channels) == {"train", "val"}
    s3 = channels["train"]["DataSource"]["S3DataSource"]
    assert s3 == {"S3DataType": "S3Prefix", "S3Uri": "s3://rec-bucket/datasets/thai/train",
                  "S3DataDistributionType": "FullyReplicated"}
    assert channels["train"]["InputMode"] == "File"
    # hyperparameters: every value a string
    hp = request["HyperParameters"]
    assert hp == {"preset": "th-ppocrv5-mobile", "dict": "dict.txt", "epochs": "20"}
    assert all(isinstance(v, str) for v in hp.values())


def test_full_spot_request_with_everything_is_valid():
    job = job_config_from_dict(job_dict(
        spot=True, max_run="12h", max_wait="30h", instance_type="ml.g5.12xlarge", instance_count=2,
        volume_gb=200, checkpoint_s3="s3://rec-bucket/ckpt/thai",
        kms_key="arn:aws:kms:us-east-1:123456789012:key/abcd-1234",
        subnets=["subnet-0abc"], security_groups=["sg-0abc"], tags={"team": "ocr th", "cost-center": "42"},
        environment={"FLAGS_fraction_of_gpu_memory_to_use": "0.9"}, max_retries=2,
        channels={"dict": "s3://rec-bucket/dicts/th"},
        training={"preset": "th-ppocrv5-mobile", "dict": "th_dict.txt", "epochs": 50, "lr": 0.0005,
                  "batch_size": 64, "image_shape": [3, 48, 320], "max_text_length": 40,
                  "pretrained": "s3://rec-bucket/weights/th_PP-OCRv5_mobile_rec_pretrained",
                  "amp": True, "overrides": ["Global.print_batch_step=50", "Train.loader.num_workers=8"]}))
    request = build_training_job_request(job, NOW)
    assert _botocore_errors(request) == ""
    assert request_problems(request) == []
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 43200, "MaxWaitTimeInSeconds": 108000}
    assert request["ResourceConfig"]["InstanceCount"] == 2
    assert "VolumeKmsKeyId" not in request["ResourceConfig"]  # g5: local NVMe, SageMaker refuses it
    assert request["OutputDataConfig"]["KmsKeyId"].startswith("arn:aws:kms")
    assert request["VpcConfig"] == {"Subnets": ["subnet-0abc"], "SecurityGroupIds": ["sg-0abc"]}
    assert request["CheckpointConfig"]["S3Uri"] == "s3://rec-bucket/ckpt/thai"
    assert request["RetryStrategy"] == {"MaximumRetryAttempts": 2}
    assert {"Key": "team", "Value": "ocr th"} in request["Tags"]
    names = [c["ChannelName"] for c in request["InputDataConfig"]]
    assert names == ["train", "val", "dict", "pretrained"]
    hp = request["HyperParameters"]
    assert json.loads(hp["image_shape"]) == [3, 48, 320]
    assert json.loads(hp["overrides"]) == ["Global.print_batch_step=50", "Train.loader.num_workers=8"]
    assert hp["pretrained"] == "channel:pretrained" and hp["amp"] == "true" and hp["lr"] == "0.0005"
    assert all(isinstance(v, str) for v in hp.values())
    # JSON round trip: what --dry-run prints is what is sent
    assert json.loads(request_json(request)) == request


def test_warm_pool_on_demand_only():
    request = build_training_job_request(job_config_from_dict(job_dict(keep_alive="30m")), NOW)
    assert request["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 1800
    assert request_problems(request) == []
    with pytest.raises(ConfigError, match="warm pool"):
        job_config_from_dict(job_dict(keep_alive="30m", spot=True))


def test_metric_definitions_within_sagemaker_limits():
    request = build_training_job_request(job_config_from_dict(job_dict()), NOW)
    defs = request["AlgorithmSpecification"]["MetricDefinitions"]
    assert 0 < len(defs) <= 40
    assert all(0 < len(d["Regex"]) <= 500 for d in defs)
    names = {d["Name"] for d in defs}
    for required in ("train:loss", "train:acc", "train:norm_edit_dis", "train:lr",
                     "train:samples_per_sec", "eval:acc", "eval:norm_edit_dis"):
        assert required in names


def test_validator_catches_what_botocore_alone_lets_through():
    request = build_training_job_request(job_config_from_dict(job_dict()), NOW)
    bad = copy.deepcopy(request)
    bad["ResourceConfig"]["InstanceType"] = "ml.g5.huge"  # enum: botocore does not check
    bad["HyperParameters"]["x" * 300] = "1"  # key over 256 characters
    bad["AlgorithmSpecification"]["MetricDefinitions"][0]["Regex"] = "a(" + "b" * 600 + ")"
    assert _botocore_errors(bad) == ""  # botocore's client-side validator misses all three
    problems = request_problems(bad)
    assert any("InstanceType" in p and "ml.g5.xlarge" in p for p in problems)
    assert any("HyperParameters key" in p for p in problems)
    assert any("MetricDefinitions[0].Regex" in p for p in problems)
    typed = copy.deepcopy(request)
    typed["HyperParameters"]["epochs"] = 20  # not a string
    assert "HyperParameters.epochs" in _botocore_errors(typed)
    assert any("HyperParameters.epochs" in p for p in request_problems(typed))


@pytest.mark.parametrize("change, match", [
    ({"role": None}, "no role"),
    ({"role": "RectrainSageMaker"}, "not an IAM role ARN"),
    ({"image": "docker.io/me/rectrain:1"}, "ECR"),
    ({"train": None}, "no train"),
    ({"output": None}, "no output"),
    ({"training": {"epochs": 3}}, "preset"),
    ({"instance_type": "ml.g5.huge"}, "InstanceType"),
])
def test_refused_with_a_fix(change, match):
    data = job_dict()
    data.update(change)
    with pytest.raises(ConfigError, match=match) as info:
        build_training_job_request(job_config_from_dict(data), NOW)
    assert info.value.fix


def test_job_names():
    job = job_config_from_dict(job_dict(name="Thai OCR v2 (test)"))
    assert job_name(job, NOW) == "Thai-OCR-v2-test-20261125-200000"
    long = job_config_from_dict(job_dict(name="x" * 80))
    assert len(job_name(long, NOW)) == 63
    exact = job_config_from_dict(job_dict(name="my-job-1", exact_name=True))
    assert job_name(exact, NOW) == "my-job-1"


def test_launch_sends_exactly_the_request_after_checking_real_s3(s3, s3_client, s3_bucket):
    """SageMaker is stubbed behind the real boto3 client (the Stubber checks the call against
    the service model); the input prefixes are checked in a real S3 server."""
    import boto3
    from botocore.stub import Stubber

    from rectrain.errors import DataError
    from rectrain.sagemaker.launch import launch_training_job

    job = job_config_from_dict(job_dict(train=f"s3://{s3_bucket}/train", val=f"s3://{s3_bucket}/val",
                                        output=f"s3://{s3_bucket}/jobs"))
    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with pytest.raises(DataError, match="channel 'train' is empty"):
        launch_training_job(job, sagemaker_client=sm, s3=s3, now=NOW)
    s3_client.put_object(Bucket=s3_bucket, Key="train/train.txt", Body=b"a.png\t\xe0\xb8\x81\n")
    s3_client.put_object(Bucket=s3_bucket, Key="val/val.txt", Body=b"a.png\t\xe0\xb8\x81\n")
    expected = build_training_job_request(job, NOW)
    arn = "arn:aws:sagemaker:us-east-1:123456789012:training-job/thai-rec-20261125-200000"
    with Stubber(sm) as stub:
        stub.add_response("create_training_job", {"TrainingJobArn": arn}, expected)
        result = launch_training_job(job, sagemaker_client=sm, s3=s3, now=NOW)
        stub.assert_no_pending_responses()
    assert result.sent and result.arn == arn and result.request == expected
    dry = launch_training_job(job, dry_run=True, now=NOW)  # no client at all: nothing contacted
    assert not dry.sent and dry.request == expected
