"""Hyperparameter tuning: the CreateHyperParameterTuningJob request from a job config, validated
against botocore's own SageMaker model; the objective's regex against real engine log lines;
``tune status`` / ``tune best`` through real boto3 clients with botocore's Stubber (which
checks every request and response against the service model). Nothing is sent to AWS."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.stub import Stubber
from botocore.validate import ParamValidator
from sm_helpers import ENGINE_LOG, IMAGE, NOW, ROLE, job_dict

from rectrain.cli.main import main
from rectrain.errors import ConfigError, UserError
from rectrain.runlog.records import parse_log
from rectrain.sagemaker.jobconfig import job_config_from_dict
from rectrain.sagemaker.metric_definitions import parse_metrics
from rectrain.sagemaker.tune import (
    best_training_job,
    build_tuning_request,
    format_tuning_status,
    parse_param,
    tuning_request_problems,
    tuning_status,
)

TRAINING_LOGS = Path(__file__).resolve().parents[1] / "training" / "fixtures"
NAME = "thai-rec-261125-200000"
T0 = dt.datetime(2026, 11, 25, 20, 0, tzinfo=dt.timezone.utc)
ARN = "arn:aws:sagemaker:us-east-1:123456789012"


def _botocore_errors(request: dict) -> str:
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model("CreateHyperParameterTuningJob").input_shape
    report = ParamValidator().validate(request, shape)
    return report.generate_report() if report.has_errors() else ""


def _request(**kwargs):
    job = job_config_from_dict(job_dict(spot=True, checkpoint_s3=None, training={
        "preset": "th-ppocrv5-mobile", "dict": "dict.txt", "epochs": 20, "lr": 0.001, "batch_size": 64}))
    params = [parse_param("lr=log:1e-4:1e-2"), parse_param("batch_size=choice:64,128"),
              parse_param("epochs=int:10:40")]
    return build_tuning_request(job, params, now=NOW, **kwargs)


def test_tuning_request_is_valid_for_botocore_and_keeps_the_job_config():
    request = _request(objective="eval_acc", max_jobs=8, max_parallel=2, early_stopping="auto")
    assert _botocore_errors(request) == ""
    assert tuning_request_problems(request) == []
    assert request["HyperParameterTuningJobName"] == NAME and len(NAME) <= 32
    cfg = request["HyperParameterTuningJobConfig"]
    assert cfg["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "eval:acc"}
    assert cfg["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 8, "MaxParallelTrainingJobs": 2}
    assert cfg["TrainingJobEarlyStoppingType"] == "Auto"
    ranges = cfg["ParameterRanges"]
    assert ranges["ContinuousParameterRanges"] == [
        {"Name": "lr", "MinValue": "1e-4", "MaxValue": "1e-2", "ScalingType": "Logarithmic"}]
    assert ranges["CategoricalParameterRanges"] == [{"Name": "batch_size", "Values": ["64", "128"]}]
    assert ranges["IntegerParameterRanges"] == [
        {"Name": "epochs", "MinValue": "10", "MaxValue": "40", "ScalingType": "Linear"}]
    definition = request["TrainingJobDefinition"]
    # tuned values are not also static; the rest of the job config is
    assert definition["StaticHyperParameters"] == {"preset": "th-ppocrv5-mobile", "dict": "dict.txt"}
    assert definition["RoleArn"] == ROLE
    assert definition["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    names = {d["Name"] for d in definition["AlgorithmSpecification"]["MetricDefinitions"]}
    assert "eval:acc" in names
    assert definition["EnableManagedSpotTraining"] is True
    assert definition["StoppingCondition"]["MaxWaitTimeInSeconds"] > definition["StoppingCondition"][
        "MaxRuntimeInSeconds"]
    assert definition["CheckpointConfig"] == {"S3Uri": f"s3://rec-bucket/rectrain/jobs/{NAME}/checkpoints",
                                              "LocalPath": "/opt/ml/checkpoints"}
    assert {c["ChannelName"] for c in definition["InputDataConfig"]} == {"train", "val"}


def test_loss_objectives_are_minimized():
    request = _request(objective="train:loss")
    assert request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["Type"] == "Minimize"


@pytest.mark.parametrize("text, match", [
    ("lr=log:0:1e-2", "above zero"),
    ("lr=log:1e-2:1e-4", "MIN must be below MAX"),
    ("batch_size=log:16:64", "whole number"),
    ("lr=int:1:3", "real number"),
    ("batch_size=choice:64,big", "not a whole number"),
    ("dropout=linear:0.1:0.5", "not a hyperparameter the container reads"),
    ("lr=1e-3", "cannot read"),
    ("batch_size=choice:64,64", "repeated"),
])
def test_bad_ranges_are_refused_with_a_fix(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_param(text)


def test_bad_tuning_settings_are_refused():
    with pytest.raises(ConfigError, match="not one of the job's metrics"):
        _request(objective="eval:accuracy")
    with pytest.raises(ConfigError, match="max-parallel"):
        _request(max_jobs=2, max_parallel=4)
    with pytest.raises(ConfigError, match="Grid"):
        _request(strategy="grid")


def test_the_validator_catches_what_sagemaker_refuses():
    request = _request()
    request["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxParallelTrainingJobs"] = 0
    request["HyperParameterTuningJobName"] = "x" * 40
    problems = " ".join(tuning_request_problems(request))
    assert "MaxParallelTrainingJobs" in problems and "HyperParameterTuningJobName" in problems


@pytest.mark.parametrize("log_file", [ENGINE_LOG, TRAINING_LOGS / "engine-2.10-cpu-train.log",
                                      TRAINING_LOGS / "engine-2.10-cpu-resume.log"])
def test_objective_regexes_read_real_engine_lines(log_file: Path):
    """SageMaker's view of the log (the regexes) equals rectrain's parser on the same lines."""
    request = _request()
    defs = request["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"]
    lines = log_file.read_text(encoding="utf-8").splitlines()
    seen = [parse_metrics(line, defs) for line in lines]
    evals = [m["eval:acc"] for m in seen if "eval:acc" in m]
    parsed = [r for r in parse_log(lines) if r["type"] == "eval"]
    assert evals and evals == [pytest.approx(r["acc"]) for r in parsed]
    losses = [m["train:loss"] for m in seen if "train:loss" in m]
    assert losses == [pytest.approx(r["loss"]) for r in parse_log(lines) if r["type"] == "train"]


def test_cli_dry_run_prints_the_valid_request(capsys: pytest.CaptureFixture, tmp_path: Path):
    job_yaml = tmp_path / "job.yaml"
    job_yaml.write_text(json.dumps(job_dict()), encoding="utf-8")  # JSON is YAML
    code = main(["sagemaker", "tune", "--job-config", str(job_yaml), "--objective", "eval_acc",
                 "--max-jobs", "4", "--max-parallel", "2", "--param", "lr=log:1e-4:1e-2",
                 "--param", "batch_size=choice:64,128", "--early-stopping", "auto", "--dry-run"])
    assert code == 0
    request = json.loads(capsys.readouterr().out)
    assert _botocore_errors(request) == "" and tuning_request_problems(request) == []
    assert request["HyperParameterTuningJobName"].startswith("thai-rec-")


# ------------------------------------------------------------------ status / best (Stubber)
def _sm():
    return boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x",
                        aws_secret_access_key="x")


def _describe_tuning(best: bool = True) -> dict:
    d = {
        "HyperParameterTuningJobName": NAME,
        "HyperParameterTuningJobArn": f"{ARN}:hyper-parameter-tuning-job/{NAME}",
        "HyperParameterTuningJobConfig": _request()["HyperParameterTuningJobConfig"],
        "HyperParameterTuningJobStatus": "InProgress",
        "CreationTime": T0,
        "TrainingJobStatusCounters": {"Completed": 2, "InProgress": 1},
        "ObjectiveStatusCounters": {"Succeeded": 2, "Pending": 1},
    }
    if best:
        d["BestTrainingJob"] = _summary("002-b", 0.91, "0.003", "128")
    return d


def _summary(suffix: str, value, lr: str, batch: str, status: str = "Completed") -> dict:
    s = {"TrainingJobName": f"{NAME}-{suffix}",
         "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{NAME}-{suffix}",
         "CreationTime": T0, "TrainingJobStatus": status,
         "TunedHyperParameters": {"lr": lr, "batch_size": batch, "epochs": "20"}}
    if value is not None:
        s["FinalHyperParameterTuningJobObjectiveMetric"] = {"MetricName": "eval:acc", "Value": value}
        s["TrainingStartTime"], s["TrainingEndTime"] = T0, T0 + dt.timedelta(minutes=30)
    return s


def test_tune_status_lists_trials_by_objective():
    sm = _sm()
    with Stubber(sm) as stub:
        stub.add_response("describe_hyper_parameter_tuning_job", _describe_tuning(),
                          {"HyperParameterTuningJobName": NAME})
        stub.add_response("list_training_jobs_for_hyper_parameter_tuning_job",
                          {"TrainingJobSummaries": [_summary("002-b", 0.91, "0.003", "128")],
                           "NextToken": "page2"},
                          {"HyperParameterTuningJobName": NAME, "MaxResults": 100,
                           "SortBy": "FinalObjectiveMetricValue", "SortOrder": "Descending"})
        stub.add_response("list_training_jobs_for_hyper_parameter_tuning_job",
                          {"TrainingJobSummaries": [_summary("001-a", 0.62, "0.0002", "64"),
                                                    _summary("003-c", None, "0.008", "64", "InProgress")]},
                          {"HyperParameterTuningJobName": NAME, "MaxResults": 100,
                           "SortBy": "FinalObjectiveMetricValue", "SortOrder": "Descending",
                           "NextToken": "page2"})
        status = tuning_status(NAME, sm)
    assert [t.name[-5:] for t in status["trials"]] == ["002-b", "001-a", "003-c"]
    assert status["best"] == f"{NAME}-002-b" and status["objective"] == "eval:acc"
    text = format_tuning_status(status)
    assert "002-b *" in text and "0.9100" in text and "0.0002" in text and "completed 2" in text


def test_tune_best_prints_the_config_to_train_it_again():
    sm = _sm()
    best = f"{NAME}-002-b"
    with Stubber(sm) as stub:
        stub.add_response("describe_hyper_parameter_tuning_job", _describe_tuning(),
                          {"HyperParameterTuningJobName": NAME})
        stub.add_response("describe_training_job", {
            "TrainingJobName": best, "TrainingJobArn": f"{ARN}:training-job/{best}",
            "TrainingJobStatus": "Completed", "SecondaryStatus": "Completed", "CreationTime": T0,
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
            "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
            "ModelArtifacts": {"S3ModelArtifacts": f"s3://rec-bucket/rectrain/jobs/{best}/output/model.tar.gz"},
            "HyperParameters": {"preset": "th-ppocrv5-mobile", "dict": "dict.txt", "lr": "0.003",
                                "batch_size": "128", "epochs": "20",
                                "_tuning_objective_metric": "eval:acc"}},
            {"TrainingJobName": best})
        result = best_training_job(NAME, sm)
    assert result["training_job"] == best and result["value"] == pytest.approx(0.91)
    assert result["training_config"] == {"preset": "th-ppocrv5-mobile", "dict": "dict.txt", "lr": 0.003,
                                         "batch_size": 128, "epochs": 20}
    assert result["model"].endswith("model.tar.gz")
    # the printed training section is a valid job config
    job = job_config_from_dict(dict(job_dict(), training=result["training_config"]))
    assert job.training.lr == 0.003 and job.training.batch_size == 128


def test_tune_best_before_any_trial_finished_says_when_to_retry():
    sm = _sm()
    with Stubber(sm) as stub:
        stub.add_response("describe_hyper_parameter_tuning_job", _describe_tuning(best=False),
                          {"HyperParameterTuningJobName": NAME})
        with pytest.raises(UserError, match="tune status"):
            best_training_job(NAME, sm)
