"""Tracking in the CreateTrainingJob request: TensorBoardOutputConfig (default under the job's
output, or its own prefix, or off) and the MLflow environment, valid for botocore's model."""

from __future__ import annotations

import botocore.session
from botocore.validate import ParamValidator
from sm_helpers import NOW, job_dict

from rectrain.sagemaker.jobconfig import job_config_from_dict
from rectrain.sagemaker.request import build_training_job_request, request_problems


def _valid(request: dict) -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    report = ParamValidator().validate(request, model.operation_model("CreateTrainingJob").input_shape)
    assert not report.has_errors(), report.generate_report()
    assert request_problems(request) == []


def test_tensorboard_output_defaults_under_the_job_output():
    request = build_training_job_request(job_config_from_dict(job_dict()), NOW)
    _valid(request)
    assert request["TensorBoardOutputConfig"] == {
        "S3OutputPath": "s3://rec-bucket/rectrain/jobs/thai-rec-20261125-200000/tensorboard/",
        "LocalPath": "/opt/ml/output/tensorboard"}
    assert "MLFLOW_TRACKING_URI" not in request["Environment"]


def test_tensorboard_prefix_off_and_mlflow_environment():
    job = job_config_from_dict(job_dict(
        tensorboard_s3="s3://tb-bucket/thai", mlflow_experiment="thai-rec",
        mlflow_uri="arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/team"))
    request = build_training_job_request(job, NOW)
    _valid(request)
    assert request["TensorBoardOutputConfig"]["S3OutputPath"] == "s3://tb-bucket/thai/"
    assert request["Environment"]["MLFLOW_TRACKING_URI"].endswith("mlflow-tracking-server/team")
    assert request["Environment"]["MLFLOW_EXPERIMENT_NAME"] == "thai-rec"
    off = build_training_job_request(job_config_from_dict(job_dict(tensorboard=False)), NOW)
    _valid(off)
    assert "TensorBoardOutputConfig" not in off
