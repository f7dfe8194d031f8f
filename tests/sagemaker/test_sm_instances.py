"""Instance families against botocore's own TrainingInstanceType enum: every family classified
(GPU or not, architecture, local storage), VolumeKmsKeyId only where SageMaker accepts it,
types the image cannot run refused at launch with the fix, regions checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import OrderedDict

import botocore.session
import pytest
from sm_helpers import IMAGE, NOW, ROLE, job_dict

from rectrain.errors import ConfigError
from rectrain.machine.instances import (
    FAMILIES,
    family_of,
    has_efa,
    is_gpu_instance,
    runnable_problems,
    variant_for,
    variant_of_image,
)
from rectrain.sagemaker.jobconfig import job_config_from_dict
from rectrain.sagemaker.request import build_training_job_request, region_problems

KMS = "arn:aws:kms:us-east-1:123456789012:key/abcd-1234"


def _enum_families():
    enum = botocore.session.get_session().get_service_model("sagemaker") \
        .shape_for("TrainingInstanceType").enum
    families = OrderedDict()
    for name in enum:
        families.setdefault(name.split(".")[1], []).append(name)
    return families


ENUM = _enum_families()


def test_every_family_of_botocores_enum_is_classified():
    missing = sorted(set(ENUM) - set(FAMILIES))
    assert not missing, f"families rectrain does not know (add them to instances.FAMILIES): {missing}"
    for family, types in ENUM.items():
        for name in types:
            assert family_of(name) is FAMILIES[family]
    # by the family token, never by a prefix of the name
    assert is_gpu_instance("ml.p6-b200.48xlarge") and is_gpu_instance("ml.p6-b300.48xlarge")
    assert is_gpu_instance("ml.g7e.2xlarge") and is_gpu_instance("ml.p5en.48xlarge")
    assert not is_gpu_instance("ml.trn2.48xlarge") and not is_gpu_instance("ml.c7i-flex.xlarge")
    assert not is_gpu_instance("ml.p6.48xlarge")  # not a real family
    gpu = sorted(f for f in ENUM if FAMILIES[f].accelerator == "nvidia")
    assert gpu == sorted(["g4dn", "g5", "g6", "g6e", "g7", "g7e", "p2", "p3", "p3dn", "p4d", "p4de",
                          "p5", "p5e", "p5en", "p6-b200", "p6-b300", "p6e-gb200"])


@pytest.mark.parametrize("family", list(ENUM))
def test_volume_kms_key_per_family(family):
    """One request per family with kms_key: VolumeKmsKeyId exactly where the type has no local
    instance storage; types the image cannot run are refused before anything is sent."""
    instance_type = ENUM[family][-1]
    job = job_config_from_dict(job_dict(instance_type=instance_type, kms_key=KMS))
    problems = runnable_problems(instance_type, IMAGE)
    if problems:
        with pytest.raises(ConfigError) as info:
            build_training_job_request(job, NOW)
        assert info.value.fix
        return
    request = build_training_job_request(job, NOW)
    assert request["OutputDataConfig"]["KmsKeyId"] == KMS  # the output is always encrypted with it
    assert ("VolumeKmsKeyId" in request["ResourceConfig"]) == (not FAMILIES[family].local_storage)


def test_local_storage_families():
    local = {f for f in ENUM if FAMILIES[f].local_storage}
    assert {"g4dn", "g5", "g6", "g6e", "p3dn", "p4d", "p5", "p6-b200", "r5d", "trn1"} <= local
    assert not {"m5", "c5", "p3", "p2", "m7i", "t3", "c6i"} & local


def test_refusals_name_the_fix():
    (arm,) = runnable_problems("ml.p6e-gb200.36xlarge", IMAGE)
    assert "arm64" in arm and "Fix:" in arm
    (neuron,) = runnable_problems("ml.trn1.32xlarge", IMAGE)
    assert "Trainium" in neuron
    (kepler,) = runnable_problems("ml.p2.xlarge", IMAGE)
    assert "3.7" in kepler
    # a CUDA 11.8 image on Hopper or Blackwell: no kernels
    old = IMAGE.replace(":0.1.0", ":0.1.0-cu118")
    (hopper,) = runnable_problems("ml.p5.48xlarge", old)
    assert "CUDA 11.8" in hopper and "--instance-type ml.p5.48xlarge" in hopper
    assert runnable_problems("ml.p6-b200.48xlarge", old)
    assert runnable_problems("ml.p5.48xlarge", IMAGE.replace(":0.1.0", ":0.1.0-cu129")) == []
    assert runnable_problems("ml.g5.xlarge", old) == [] and runnable_problems("ml.m5.xlarge", old) == []
    with pytest.raises(ConfigError, match="arm64"):
        build_training_job_request(job_config_from_dict(job_dict(instance_type="ml.p6e-gb200.36xlarge")), NOW)


def test_variants_and_efa():
    assert variant_for("ml.g5.xlarge") == "cu118" and variant_for("ml.g6e.xlarge") == "cu118"
    assert variant_for("ml.p5.48xlarge") == "cu129" and variant_for("ml.p6-b200.48xlarge") == "cu129"
    assert variant_for("ml.g7e.2xlarge") == "cu129" and variant_for("ml.m5.xlarge") == "cu118"
    assert variant_of_image("1.dkr.ecr.us-east-1.amazonaws.com/rectrain:0.1.0-cu129") == "cu129"
    assert variant_of_image(IMAGE) is None
    assert has_efa("ml.p4d.24xlarge") and has_efa("ml.p5.48xlarge") and has_efa("ml.g5.48xlarge")
    assert not has_efa("ml.g5.xlarge") and not has_efa("ml.p3.16xlarge") and not has_efa(None)


def test_image_region_must_be_the_jobs():
    assert region_problems(IMAGE, "us-east-1") == []
    (problem,) = region_problems(IMAGE, "ap-southeast-1")
    assert "us-east-1" in problem and "ap-southeast-1" in problem
    with pytest.raises(ConfigError, match="ECR region us-east-1") as info:
        build_training_job_request(job_config_from_dict(job_dict(region="ap-southeast-7")), NOW)
    assert "--region ap-southeast-7" in info.value.fix


def test_bucket_in_another_region_is_refused_before_sending(s3, s3_client, s3_bucket):
    """A real S3 server answers GetBucketLocation; SageMaker itself is never reached."""
    import boto3

    from rectrain.sagemaker.launch import launch_training_job

    s3_client.put_object(Bucket=s3_bucket, Key="train/train.txt", Body=b"a.png\tx\n")
    location = s3_client.get_bucket_location(Bucket=s3_bucket).get("LocationConstraint") or "us-east-1"
    other = "eu-central-1" if location != "eu-central-1" else "us-west-2"
    image = IMAGE.replace("us-east-1", other)
    job = job_config_from_dict(job_dict(region=other, image=image, train=f"s3://{s3_bucket}/train",
                                        val=None, output=f"s3://{s3_bucket}/jobs"))
    sm = boto3.client("sagemaker", region_name=other, aws_access_key_id="x", aws_secret_access_key="x")
    with pytest.raises(ConfigError, match=f"bucket {s3_bucket}") as info:
        launch_training_job(job, sagemaker_client=sm, s3=s3, now=NOW)
    assert other in str(info.value)


def test_launch_dry_run_kms_on_g5_has_no_volume_key(tmp_path):
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x", "AWS_EC2_METADATA_DISABLED": "true"}
    job = tmp_path / "job.yaml"
    job.write_text(f"name: thai-rec\nrole: {ROLE}\nimage: {IMAGE}\nkms_key: {KMS}\n"
                   "instance_type: ml.g5.xlarge\ntrain: s3://b/train\noutput: s3://b/jobs\n"
                   "training:\n  preset: th-ppocrv5-mobile\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "rectrain", "sagemaker", "launch", "--job-config", str(job),
                           "--dry-run"], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    request = json.loads(proc.stdout)
    assert "VolumeKmsKeyId" not in request["ResourceConfig"]
    assert request["OutputDataConfig"]["KmsKeyId"] == KMS
    proc = subprocess.run([sys.executable, "-m", "rectrain", "sagemaker", "launch", "--job-config", str(job),
                           "--instance-type", "ml.m5.xlarge", "--dry-run"], capture_output=True, text=True,
                          timeout=120, env=env)
    assert json.loads(proc.stdout)["ResourceConfig"]["VolumeKmsKeyId"] == KMS  # EBS: the key is taken
