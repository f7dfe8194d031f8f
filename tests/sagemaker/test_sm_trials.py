"""Tuning trials that cannot collide. Every training job a tuning job launches shares the tuning
job's one ``CheckpointConfig.S3Uri``, and SageMaker restores all of it into each trial's
``/opt/ml/checkpoints``. A trial (``_tuning_objective_metric`` in its hyperparameters, as
SageMaker adds it) keeps its checkpoints in ``<checkpoints>/<TRAINING_JOB_NAME>/``: a restart of
the same trial resumes them, another trial never reads them. Who wrote what is judged from a
plain boto3 listing of the bucket and the engine's own run history, not from rectrain's code."""

from __future__ import annotations

import io
import json
import tarfile

import botocore.session
import pytest
from botocore.validate import ParamValidator
from sm_helpers import NOW, job_dict, make_tiny_dataset

from rectrain.container.contract import checkpoint_dir, tuning_trial
from rectrain.emulator.checkpoint_agent import SageMakerCheckpointSync
from rectrain.errors import ConfigError
from rectrain.paths import MLPaths
from rectrain.sagemaker.jobconfig import job_config_from_dict
from rectrain.sagemaker.metric_definitions import parse_metrics
from rectrain.sagemaker.tune import (
    DEFAULT_OBJECTIVE,
    TUNING_MARK,
    build_tuning_request,
    parse_param,
    trial_checkpoint_uri,
    trial_request,
)
from rectrain.storage.s3 import S3Uri


def _valid(request, operation):
    model = botocore.session.get_session().get_service_model("sagemaker")
    report = ParamValidator().validate(request, model.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


def test_a_trial_knows_it_is_one_and_keeps_its_own_folder(tmp_path):
    paths = MLPaths.resolve(str(tmp_path))
    plain = {"preset": "crnn-mv3", "lr": "0.001"}
    assert tuning_trial(plain, {"TRAINING_JOB_NAME": "job-1"}) is None
    assert checkpoint_dir(paths, None) == paths.checkpoints
    trial = dict(plain, **{TUNING_MARK: "eval:best_acc"})
    name = "thai-rec-261205-120000-002-0a1b2c3d"
    assert tuning_trial(trial, {"TRAINING_JOB_NAME": name}) == name
    assert checkpoint_dir(paths, name) == paths.checkpoints / name
    # fail closed: a trial that cannot name its folder does not train into the shared one
    for bad in ({}, {"TRAINING_JOB_NAME": ""}, {"TRAINING_JOB_NAME": "../other"},
                {"TRAINING_JOB_NAME": "a/b"}):
        with pytest.raises(ConfigError, match="TRAINING_JOB_NAME") as info:
            tuning_trial(trial, bad)
        assert info.value.fix


def test_a_trials_request_is_what_sagemaker_derives_from_the_tuning_request():
    job = job_config_from_dict(job_dict(spot=True))
    tuning = build_tuning_request(job, [parse_param("lr=log:1e-4:1e-2")], now=NOW)
    objective = tuning["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    assert objective == {"Type": "Maximize", "MetricName": DEFAULT_OBJECTIVE} == \
        {"Type": "Maximize", "MetricName": "eval:best_acc"}
    first, second = (trial_request(tuning, n, {"lr": lr}) for n, lr in ((1, "0.001"), (2, "0.003")))
    for request in (first, second):
        _valid(request, "CreateTrainingJob")
        assert request["HyperParameters"][TUNING_MARK] == "eval:best_acc"
        assert request["CheckpointConfig"] == tuning["TrainingJobDefinition"]["CheckpointConfig"]
    assert first["TrainingJobName"].startswith(tuning["HyperParameterTuningJobName"] + "-001-")
    assert first["TrainingJobName"] != second["TrainingJobName"]
    assert second["HyperParameters"]["lr"] == "0.003"
    shared = tuning["TrainingJobDefinition"]["CheckpointConfig"]["S3Uri"]
    assert trial_checkpoint_uri(shared, first["TrainingJobName"]) == f"{shared}{first['TrainingJobName']}/"


def test_run_local_tuning_trial_flags_go_together():
    import subprocess
    import sys

    base = [sys.executable, "-m", "rectrain", "sagemaker", "run-local", "--name", "tune", "--train",
            "s3://b/t", "--output", "s3://b/o", "--preset", "crnn-mv3"]
    for extra in (["--tuning-trial", "1"], ["--tuned", "lr=0.001"],
                  ["--tuning-trial", "0", "--tuned", "lr=1"]):
        proc = subprocess.run(base + extra, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and "--tuning-trial N" in proc.stderr and "Traceback" not in proc.stderr


def test_the_agent_tells_a_restartable_trial_by_its_own_folder(s3, s3_bucket, tmp_path):
    """``--interrupt-after-checkpoint`` for a trial waits for *its* latest snapshot and run state,
    not another trial's (restored, unchanged) ones."""
    uri = S3Uri(s3_bucket, "tuning/checkpoints/")
    other = "tune-001-aaaaaaaa"
    s3.put_bytes(uri.join(f"{other}/snapshots/s1-latest-x/_COMPLETE.json"), b"{}")
    s3.put_bytes(uri.join(f"{other}/run/run-state.json"), b"{}")
    sync = SageMakerCheckpointSync(s3, tmp_path / "ck", uri)
    assert sync.restore() == 2
    mine = "tune-002-bbbbbbbb"
    assert not sync.restart_ready(mine) and not sync.restart_ready(other)
    for rel in ("snapshots/s1-latest-y/_COMPLETE.json", "run/run-state.json"):
        (tmp_path / "ck" / mine / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "ck" / mine / rel).write_text("{}", encoding="utf-8")
    sync.scan()
    assert sync.restart_ready(mine) and not sync.restart_ready(other) and not sync.restart_ready()


def test_the_last_objective_value_is_the_shipped_checkpoints(tmp_path, caplog):
    """The job's last "best metric" line is the shipped checkpoint's (model.json), as SageMaker's
    regex for the objective reads it; without an evaluation, no line and a warning."""
    from rectrain.container.entrypoint import report_shipped_metrics
    from rectrain.sagemaker.metric_definitions import metric_definitions

    (tmp_path / "model.json").write_text(json.dumps({
        "checkpoint": {"name": "/opt/ml/checkpoints/snapshots/s120-best_of_run-x/best_of_run",
                       "global_step": 120},
        "metrics": {"acc": 0.8125, "norm_edit_dis": 0.93, "fps": 40.0, "best_epoch": 7}}), encoding="utf-8")
    line = report_shipped_metrics(tmp_path)
    assert line and "best_of_run (step 120)" in line
    assert parse_metrics(line, metric_definitions())[DEFAULT_OBJECTIVE] == pytest.approx(0.8125)
    (tmp_path / "model.json").write_text(json.dumps({"metrics": None}), encoding="utf-8")
    assert report_shipped_metrics(tmp_path) is None and "no evaluation metrics" in caplog.text


def _keys(s3_client, bucket, prefix):
    out = {}
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out.update({o["Key"]: o["ETag"] for o in page.get("Contents", [])})
    return out


def _records(ml_root, trial):
    path = MLPaths.resolve(str(ml_root)).checkpoints / trial / "run" / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _latest_step(s3_client, bucket, key):
    body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    return max(json.loads(line)["global_step"] for line in body.splitlines()
               if line.strip() and json.loads(line).get("type") == "train")


@pytest.mark.slow
def test_two_trials_on_one_prefix_never_see_each_other(s3, s3_server, s3_client, s3_bucket, tmp_path, capfd):
    """run-local: trial 1 is interrupted (spot) once its checkpoint is in S3; trial 2 of the same
    tuning job starts with trial 1's files restored (SageMaker restores the whole shared prefix)
    yet trains from scratch, writes only below its own name and leaves trial 1's objects as they
    were; trial 1 restarted (same name) resumes its own checkpoint and leaves trial 2's alone."""
    from rectrain.emulator.run_local import local_trial_request, run_local

    data = make_tiny_dataset(tmp_path / "data")
    for path in sorted(data["root"].rglob("*")):
        if path.is_file():
            s3_client.upload_file(str(path), s3_bucket,
                                  f"datasets/thai/train/{path.relative_to(data['root']).as_posix()}")
    # long enough that no start can finish before its first checkpoint is in S3 (then SIGTERM)
    job = job_config_from_dict({
        "name": "tune-trials", "instance_type": "ml.g5.xlarge", "max_run": "1h", "spot": True,
        "train": f"s3://{s3_bucket}/datasets/thai/train", "output": f"s3://{s3_bucket}/jobs",
        "endpoint_url": s3_server.endpoint_url,
        "training": {"preset": "crnn-mv3", "dict": "dict.txt", "batch_size": 4, "epochs": 48}})
    one = local_trial_request(job, 1, {"lr": "0.001"})
    two = local_trial_request(job, 2, {"lr": "0.003"})
    shared = one["CheckpointConfig"]["S3Uri"]
    assert shared == two["CheckpointConfig"]["S3Uri"] == f"s3://{s3_bucket}/jobs/tune-trials/checkpoints/"
    prefix = shared[len(f"s3://{s3_bucket}/"):]
    a, b = one["TrainingJobName"], two["TrainingJobName"]
    # markers 6 s after the copy: three scans of the agent (every 2 s), so the marker never goes
    # up before the final bytes of its files (docs/problem-log.md, the two-host restart entry)
    spot = {"interrupt_after": [1], "interrupt_after_checkpoint": True, "max_starts": 1, "s3": s3,
            "grace_seconds": 120, "extra_env": {"RECTRAIN_SEAL_AFTER_S": "6"}}

    first = run_local(job, request=one, work_dir=str(tmp_path / "a1"), **spot)
    assert [x.exit_code for x in first.attempts] == [75], first.summary() + "\n" + (first.failure or "")
    after_one = _keys(s3_client, s3_bucket, prefix)
    assert after_one and all(k.startswith(f"{prefix}{a}/") for k in after_one)
    step_one = _latest_step(s3_client, s3_bucket, f"{prefix}{a}/run/metrics.jsonl")

    capfd.readouterr()
    second = run_local(job, request=two, work_dir=str(tmp_path / "b1"), s3=s3, max_steps=2)
    assert second.exit_code == 0, second.summary() + "\n" + (second.failure or "")
    # the objective as SageMaker reads it (the request's regexes, the last value in the job's
    # output) is the accuracy model.json gives the checkpoint model.tar.gz ships
    out = capfd.readouterr()
    seen = [parse_metrics(line, two["AlgorithmSpecification"]["MetricDefinitions"])
            for line in (out.out + out.err).splitlines()]
    final = [m[DEFAULT_OBJECTIVE] for m in seen if DEFAULT_OBJECTIVE in m][-1]
    body = s3_client.get_object(Bucket=s3_bucket, Key=f"jobs/{b}/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        shipped = json.load(tar.extractfile("model.json"))["metrics"]["acc"]
    assert final == pytest.approx(shipped)
    assert second.attempts[0].restored_files == len(after_one)  # trial 1's files came back: SageMaker's way
    records = _records(tmp_path / "b1", b)
    assert not [r for r in records if r.get("type") == "resume"]  # ... and were not resumed
    assert min(r["global_step"] for r in records if r.get("type") == "train") == 1
    after_two = _keys(s3_client, s3_bucket, prefix)
    assert {k: v for k, v in after_two.items() if k.startswith(f"{prefix}{a}/")} == after_one
    new = set(after_two) - set(after_one)
    assert new and all(k.startswith(f"{prefix}{b}/") for k in new)
    assert second.model_s3 == f"s3://{s3_bucket}/jobs/{b}/output/model.tar.gz"

    again = run_local(job, request=one, work_dir=str(tmp_path / "a2"), **spot)  # the spot restart
    assert [x.exit_code for x in again.attempts] == [75], again.summary() + "\n" + (again.failure or "")
    resumes = [r for r in _records(tmp_path / "a2", a) if r.get("type") == "resume"]
    assert len(resumes) == 1 and resumes[0]["global_step"] > 0
    assert resumes[0]["global_step"] <= step_one  # its own checkpoint, from its own folder
    mine = _keys(s3_client, s3_bucket, f"{prefix}{b}/")
    assert mine == {k: v for k, v in after_two.items() if k.startswith(f"{prefix}{b}/")}
