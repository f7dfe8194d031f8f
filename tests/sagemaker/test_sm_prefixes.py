"""Prefixes as S3 reads them. SageMaker matches a channel's (and the checkpoint config's)
``S3Uri`` as a *key* prefix: ``s3://b/ds/train`` also matches ``ds/train_extra/...``. rectrain
sends every prefix with its '/', and ``run-local`` downloads what SageMaker would for the URI in
the request, no kinder: without the '/' the sibling's objects come too. The expectation of
every count comes from a plain boto3 listing (S3 itself), not from rectrain's code."""

from __future__ import annotations

import json

import botocore.session
import pytest
from botocore.validate import ParamValidator
from sm_helpers import NOW, job_dict, make_tiny_dataset

from rectrain.emulator.channels import download_channel
from rectrain.emulator.checkpoint_agent import SageMakerCheckpointSync
from rectrain.sagemaker.jobconfig import job_config_from_dict
from rectrain.sagemaker.request import build_training_job_request
from rectrain.sagemaker.tune import build_tuning_request, parse_param
from rectrain.storage.s3 import S3Uri


def _s3_uris(value, path=""):
    """Every ``(path, value)`` of the request whose value is an ``s3://`` address."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _s3_uris(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _s3_uris(item, f"{path}[{i}]")
    elif isinstance(value, str) and value.startswith("s3://"):
        yield path, value


def _valid(request, operation):
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model(operation).input_shape
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()


def _full_job(**extra):
    return job_config_from_dict(job_dict(
        checkpoint_s3="s3://rec-bucket/ckpt/thai", tensorboard_s3="s3://rec-bucket/tb/thai",
        channels={"dict": "s3://rec-bucket/dicts/thai", "config": "s3://rec-bucket/configs"},
        output="s3://rec-bucket/rectrain/jobs", **extra,
        training={"preset": "th-ppocrv5-mobile", "pretrained": "s3://rec-bucket/weights/v5"}))


def test_every_prefix_of_a_request_ends_with_a_slash():
    request = build_training_job_request(_full_job(), NOW)
    _valid(request, "CreateTrainingJob")
    uris = dict(_s3_uris(request))
    assert len(uris) == 8  # 5 channels, output, checkpoints, tensorboard: nothing missed
    assert all(uri.endswith("/") for uri in uris.values()), uris
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
                for c in request["InputDataConfig"]}
    assert channels["train"] == "s3://rec-bucket/datasets/thai/train/"
    assert channels["pretrained"] == "s3://rec-bucket/weights/v5/"
    assert request["CheckpointConfig"]["S3Uri"] == "s3://rec-bucket/ckpt/thai/"
    assert request["OutputDataConfig"]["S3OutputPath"] == "s3://rec-bucket/rectrain/jobs/"
    assert request["TensorBoardOutputConfig"]["S3OutputPath"] == "s3://rec-bucket/tb/thai/"
    # already with its '/': unchanged, never doubled
    again = build_training_job_request(job_config_from_dict(job_dict(train="s3://rec-bucket/d/train/")), NOW)
    assert again["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == "s3://rec-bucket/d/train/"


def test_a_pretrained_pdparams_object_is_named_in_full():
    job = job_config_from_dict(job_dict(training={
        "preset": "th-ppocrv5-mobile", "pretrained": "s3://rec-bucket/weights/th_rec_pretrained.pdparams"}))
    request = build_training_job_request(job, NOW)
    pretrained = [c for c in request["InputDataConfig"] if c["ChannelName"] == "pretrained"][0]
    assert pretrained["DataSource"]["S3DataSource"]["S3Uri"] == "s3://rec-bucket/weights/th_rec_pretrained.pdparams"


def test_every_prefix_of_a_tuning_request_ends_with_a_slash():
    request = build_tuning_request(_full_job(), [parse_param("lr=log:1e-4:1e-2")], now=NOW)
    _valid(request, "CreateHyperParameterTuningJob")
    uris = dict(_s3_uris(request))
    assert uris and all(uri.endswith("/") for uri in uris.values()), uris
    assert request["TrainingJobDefinition"]["CheckpointConfig"]["S3Uri"] == "s3://rec-bucket/ckpt/thai/"


def _sibling_prefixes(s3_client, bucket):
    """``ds/train/`` (3 objects), its sibling ``ds/train_extra/`` (2) and an object
    ``ds/train.txt`` whose key also starts with ``ds/train``."""
    for key in ("ds/train/a.png", "ds/train/b/c.png", "ds/train/labels.txt",
                "ds/train_extra/d.png", "ds/train_extra/labels.txt", "ds/train.txt"):
        s3_client.put_object(Bucket=bucket, Key=key, Body=key.encode())


def _boto3_keys(s3_client, bucket, prefix):
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def test_a_channel_holds_what_sagemaker_matches_no_more_no_less(s3, s3_client, s3_bucket, tmp_path):
    _sibling_prefixes(s3_client, s3_bucket)
    # without the '/': the key prefix matches the sibling folder and the .txt object too
    without = tmp_path / "without"
    n = download_channel(s3, S3Uri(s3_bucket, "ds/train"), without)
    assert n == len(_boto3_keys(s3_client, s3_bucket, "ds/train")) == 6
    files = sorted(p.relative_to(without).as_posix() for p in without.rglob("*") if p.is_file())
    # where AWS's own emulation (the SageMaker SDK's local mode) puts them: key minus prefix
    assert files == [".txt", "_extra/d.png", "_extra/labels.txt", "a.png", "b/c.png", "labels.txt"]
    # with the '/' (what rectrain sends): the folder's own objects only
    own = tmp_path / "own"
    assert download_channel(s3, S3Uri(s3_bucket, "ds/train/"), own) == \
        len(_boto3_keys(s3_client, s3_bucket, "ds/train/")) == 3
    assert (own / "b" / "c.png").read_bytes() == b"ds/train/b/c.png"
    assert not (own / "_extra").exists()
    # an object named in full is that one file
    one = tmp_path / "one"
    assert download_channel(s3, S3Uri(s3_bucket, "ds/train.txt"), one) == 1
    assert (one / "train.txt").read_bytes() == b"ds/train.txt"


def test_the_checkpoint_agent_restores_a_key_prefix_like_sagemaker(s3, s3_client, s3_bucket, tmp_path):
    """syne-tune PR #363: a CheckpointConfig.S3Uri ``.../ASHA-1`` restored ``.../ASHA-10`` too."""
    for key in ("ckpt/run1/latest.pdparams", "ckpt/run10/latest.pdparams"):
        s3_client.put_object(Bucket=s3_bucket, Key=key, Body=key.encode())
    kind = SageMakerCheckpointSync(s3, tmp_path / "slash", S3Uri(s3_bucket, "ckpt/run1/"))
    assert kind.restore() == 1
    unkind = SageMakerCheckpointSync(s3, tmp_path / "bare", S3Uri(s3_bucket, "ckpt/run1"))
    assert unkind.restore() == 2  # run10's checkpoint comes back too, as on SageMaker
    assert sorted(p.relative_to(tmp_path / "bare").as_posix() for p in (tmp_path / "bare").rglob("*")
                  if p.is_file()) == ["0/latest.pdparams", "latest.pdparams"]


@pytest.mark.slow
def test_run_local_with_a_sibling_prefix_pulls_only_the_channels_files(s3, s3_server, s3_client, s3_bucket,
                                                                        tmp_path):
    """A real run-local (the entrypoint trains one step on the CPU): the train channel holds
    exactly the objects under ``datasets/thai/train/``, none of ``datasets/thai/train_extra/``;
    then AWS's own training toolkit (PyPI ``sagemaker-training``) reads the emulated /opt/ml tree."""
    from rectrain.emulator.run_local import run_local

    data = make_tiny_dataset(tmp_path / "data")
    for path in sorted(data["root"].rglob("*")):
        if path.is_file():
            rel = path.relative_to(data["root"]).as_posix()
            s3_client.upload_file(str(path), s3_bucket, f"datasets/thai/train/{rel}")
            s3_client.upload_file(str(path), s3_bucket, f"datasets/thai/train_extra/{rel}")
    s3_client.put_object(Bucket=s3_bucket, Key="datasets/thai/train_extra/only-here.txt", Body=b"x")
    job = job_config_from_dict({
        "name": "sibling", "instance_type": "ml.g5.xlarge", "max_run": "1h", "region": "eu-west-1",
        "train": f"s3://{s3_bucket}/datasets/thai/train", "output": f"s3://{s3_bucket}/jobs",
        "endpoint_url": s3_server.endpoint_url,
        "training": {"preset": "crnn-mv3", "dict": "dict.txt", "batch_size": 4, "epochs": 1}})
    result = run_local(job, work_dir=str(tmp_path / "ml"), s3=s3, max_steps=1)
    assert result.exit_code == 0, result.summary() + "\n" + (result.failure or "")
    channel = tmp_path / "ml" / "input" / "data" / "train"
    got = sorted(p.relative_to(channel).as_posix() for p in channel.rglob("*") if p.is_file())
    own = "datasets/thai/train/"
    want = [k[len(own):] for k in _boto3_keys(s3_client, s3_bucket, own)]
    assert got == want and "only-here.txt" not in got and not any(g.startswith("_extra") for g in got)
    _toolkit_reads(tmp_path / "ml", result.job_name, want)


def _toolkit_reads(ml_root, job_name, train_files):
    """AWS's training toolkit, in a subprocess pointed at the tree (SAGEMAKER_BASE_DIR), reads
    the contract files as SageMaker writes them: the hosts, the channels, the hyperparameters
    and the job name from TRAINING_JOB_NAME."""
    import os
    import subprocess
    import sys

    from rectrain.emulator.run_local import job_environment

    pytest.importorskip("sagemaker_training")
    config = ml_root / "input" / "config"
    arn = json.loads((config / "trainingjobconfig.json").read_text(encoding="utf-8"))
    sagemaker_env = job_environment(arn, "eu-west-1")  # what run-local gave the container
    code = ("import json\nfrom sagemaker_training import environment\n"
            "env = environment.Environment()\n"
            "print(json.dumps({'job': env.job_name, 'hosts': env.hosts, 'host': env.current_host,"
            " 'master': env.master_hostname, 'type': env.current_instance_type,"
            " 'channels': env.channel_input_dirs, 'hp': env.hyperparameters,"
            " 'iface': env.network_interface_name}))\n")
    env = dict(os.environ, SAGEMAKER_BASE_DIR=str(ml_root), **sagemaker_env)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["job"] == job_name == arn["TrainingJobName"]
    assert seen["hosts"] == ["algo-1"] and seen["host"] == seen["master"] == "algo-1"
    assert seen["type"] == "ml.g5.xlarge" and seen["iface"] == "eth0"
    assert seen["channels"] == {"train": str(ml_root / "input" / "data" / "train")}
    assert sorted(seen["hp"]) == sorted(arn["HyperParameters"])
    files = sorted(p.relative_to(seen["channels"]["train"]).as_posix()
                   for p in (ml_root / "input" / "data" / "train").rglob("*") if p.is_file())
    assert files == train_files
    # the request as a file: a CreateTrainingJob request botocore's model accepts
    _valid(arn, "CreateTrainingJob")
    checkpoint = json.loads((config / "checkpointconfig.json").read_text(encoding="utf-8"))
    assert checkpoint == arn["CheckpointConfig"]


def test_the_job_arn_is_shaped_as_sagemaker_describes_it():
    """TRAINING_JOB_ARN as DescribeTrainingJob's TrainingJobArn pattern (botocore's model)."""
    import re

    from rectrain.emulator.run_local import job_environment, local_request

    request = local_request(job_config_from_dict(job_dict(name="Thai-Rec")))
    env = job_environment(request, "ap-southeast-1")
    shape = botocore.session.get_session().get_service_model("sagemaker") \
        .operation_model("DescribeTrainingJob").output_shape.members["TrainingJobArn"]
    assert re.fullmatch(shape.metadata["pattern"], env["TRAINING_JOB_ARN"])
    assert env["TRAINING_JOB_ARN"].startswith(
        "arn:aws:sagemaker:ap-southeast-1:123456789012:training-job/thai-rec-")
    assert env["TRAINING_JOB_NAME"] == request["TrainingJobName"]
