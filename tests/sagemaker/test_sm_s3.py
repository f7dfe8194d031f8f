"""One S3 stack: the SageMaker code moves S3 objects through ``rectrain.storage`` (verified puts
and gets, translated errors) against a real S3 server, and its own AWS errors go through
storage's translation."""

from __future__ import annotations

import hashlib

import pytest
from botocore.exceptions import ClientError, NoCredentialsError

from rectrain.emulator.run_local import download_prefix
from rectrain.errors import DataError, EnvironmentProblem, IntegrityError, PermissionProblem, UserError
from rectrain.sagemaker import aws
from rectrain.sagemaker.launch import preflight_inputs
from rectrain.storage.s3 import S3Uri


def test_download_prefix_verifies_and_an_empty_prefix_is_zero(s3, s3_client, s3_bucket, tmp_path):
    assert download_prefix(s3, S3Uri(s3_bucket, "ckpt"), tmp_path / "none") == 0
    s3_client.put_object(Bucket=s3_bucket, Key="ckpt/a/latest.pdparams", Body=b"p" * 100)
    s3_client.put_object(Bucket=s3_bucket, Key="ckpt2/other", Body=b"x")  # a folder, not a string prefix
    assert download_prefix(s3, S3Uri(s3_bucket, "ckpt"), tmp_path / "ok") == 1
    assert (tmp_path / "ok/a/latest.pdparams").read_bytes() == b"p" * 100
    s3_client.put_object(Bucket=s3_bucket, Key="bad/x.pdopt", Body=b"changed",
                         Metadata={"sha256": hashlib.sha256(b"original").hexdigest()})
    with pytest.raises(IntegrityError):
        download_prefix(s3, S3Uri(s3_bucket, "bad"), tmp_path / "bad")
    assert not (tmp_path / "bad/x.pdopt").exists()


def test_preflight_names_the_empty_channel(s3, s3_client, s3_bucket):
    s3_client.put_object(Bucket=s3_bucket, Key="train/a.txt", Body=b"a")
    channels = [{"ChannelName": name, "DataSource": {"S3DataSource": {"S3Uri": f"s3://{s3_bucket}/{name}"}}}
                for name in ("train", "val")]
    preflight_inputs({"InputDataConfig": channels[:1]}, s3)
    with pytest.raises(DataError, match="channel 'val' is empty"):
        preflight_inputs({"InputDataConfig": channels}, s3)


def test_sagemaker_errors_are_translated_by_storage():
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "User: x is not authorized"}},
                         "CreateTrainingJob")
    err = aws.aws_error(denied, "sagemaker:CreateTrainingJob", "job-1")
    assert isinstance(err, PermissionProblem) and err.action == "sagemaker:CreateTrainingJob"
    assert "was denied on job-1: User: x is not authorized" in str(err) and "docs/sagemaker.md" in str(err)
    quota = ClientError({"Error": {"Code": "ResourceLimitExceeded", "Message": "0"}}, "CreateTrainingJob")
    assert "quota" in str(aws.aws_error(quota, "sagemaker:CreateTrainingJob"))
    assert isinstance(aws.aws_error(NoCredentialsError(), "logs:FilterLogEvents"), EnvironmentProblem)
    other = aws.aws_error(ClientError({"Error": {"Code": "Weird", "Message": "m"}}, "X"), "sagemaker:X")
    assert type(other) is UserError and "(Weird)" in str(other)


def test_s3_clients_come_from_storage():
    from rectrain.sagemaker.jobconfig import JobConfig
    from rectrain.storage.service import S3Service

    s3 = aws.s3_for(JobConfig(region="eu-west-1", endpoint_url="http://127.0.0.1:9"))
    assert isinstance(s3, S3Service)
    client = s3.client
    assert client.meta.endpoint_url == "http://127.0.0.1:9" and client.meta.region_name == "eu-west-1"
    assert client.meta.config.signature_version == "s3v4"  # storage's client, not a bare boto3 one
    with pytest.raises(ValueError, match="S3Service"):
        aws.client("s3", "eu-west-1")
