"""`rectrain sagemaker ...` end to end through the real CLI process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import botocore.session
from botocore.validate import ParamValidator
from sm_helpers import IMAGE, ROLE

from rectrain.sagemaker.request import request_problems

ENV = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x",
       "AWS_SECRET_ACCESS_KEY": "x", "AWS_EC2_METADATA_DISABLED": "true"}


def _rectrain(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rectrain", *args], capture_output=True, text=True,
                          timeout=120, env=env or ENV)


def test_dry_run_prints_only_the_request(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text(
        f"name: thai-rec\nrole: {ROLE}\nimage: {IMAGE}\n"
        "train: s3://b/train\nval: s3://b/val\noutput: s3://b/jobs\n"
        "training:\n  preset: th-ppocrv5-mobile\n  dict: dict.txt\n", encoding="utf-8")
    proc = _rectrain("sagemaker", "launch", "--job-config", str(job), "--spot", "--max-run", "6h",
                     "--instance-type", "ml.g5.2xlarge", "--instance-count", "2",
                     "--checkpoint-s3", "s3://b/ckpt/thai", "--epochs", "40", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    request = json.loads(proc.stdout)  # stdout is exactly one JSON document
    assert proc.stdout.strip().startswith("{") and proc.stdout.strip().endswith("}")
    shape = botocore.session.get_session().get_service_model("sagemaker") \
        .operation_model("CreateTrainingJob").input_shape
    assert not ParamValidator().validate(request, shape).has_errors()
    assert request_problems(request) == []
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 21600, "MaxWaitTimeInSeconds": 43200}
    assert request["ResourceConfig"]["InstanceType"] == "ml.g5.2xlarge"
    assert request["ResourceConfig"]["InstanceCount"] == 2
    assert request["CheckpointConfig"]["S3Uri"] == "s3://b/ckpt/thai/"
    assert request["HyperParameters"]["epochs"] == "40"
    assert request["TrainingJobName"].startswith("thai-rec-")


def test_flags_only_and_a_clear_error():
    proc = _rectrain("sagemaker", "launch", "--name", "x", "--role", ROLE, "--image", IMAGE,
                     "--train", "s3://b/t", "--output", "s3://b/o", "--preset", "crnn-mv3", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["HyperParameters"] == {"preset": "crnn-mv3"}
    bad = _rectrain("sagemaker", "launch", "--train", "s3://b/t", "--dry-run")
    assert bad.returncode == 2 and bad.stdout == ""
    assert "no role" in bad.stderr and "Fix:" in bad.stderr and "Traceback" not in bad.stderr


def test_unknown_job_config_key(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("instance_typo: ml.g5.xlarge\n", encoding="utf-8")
    proc = _rectrain("sagemaker", "launch", "--job-config", str(job), "--dry-run")
    assert proc.returncode == 2 and "did you mean 'instance_type'" in proc.stderr


def test_image_prints_ecr_commands():
    proc = _rectrain("sagemaker", "image", "--account", "123456789012", "--region", "ap-southeast-1",
                     "--tag", "v1")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    uri = "123456789012.dkr.ecr.ap-southeast-1.amazonaws.com/rectrain:v1-cu118"
    assert "aws ecr create-repository --region ap-southeast-1 --repository-name rectrain" in out
    registry = "123456789012.dkr.ecr.ap-southeast-1.amazonaws.com"
    assert f"docker login --username AWS --password-stdin {registry}" in out
    assert "docker build --platform linux/amd64 --build-arg CUDA_IMAGE=nvidia/cuda:11.8" in out
    assert "--build-arg CUDA_VERSION=11.8" in out and f"-t {uri}" in out
    assert f"docker push {uri}" in out
    hopper = _rectrain("sagemaker", "image", "--account", "123456789012", "--region", "us-east-1",
                       "--instance-type", "ml.p5.48xlarge")
    assert hopper.returncode == 0 and "--build-arg CUDA_VERSION=12.9" in hopper.stdout
    assert ":0." in hopper.stdout and "-cu129 " in hopper.stdout
    arm = _rectrain("sagemaker", "image", "--account", "1", "--region", "us-east-1",
                    "--instance-type", "ml.p6e-gb200.36xlarge")
    assert arm.returncode == 2 and "arm64" in arm.stderr


def test_dockerfile_contract():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert "FROM ${CUDA_IMAGE}" in text and "ARG CUDA_IMAGE=nvidia/cuda:11.8.0-cudnn8-runtime" in text
    assert "ARG PYTHON_VERSION=" in text and "uv python install ${PYTHON_VERSION}" in text
    # exactly the tested pins, through the constraints file, for every pip install
    installs = [line for line in text.splitlines() if "pip install" in line and "uv pip" not in line]
    assert installs and all("-c constraints.txt" in line for line in installs)
    assert "paddlepaddle-gpu" in text and '"${PADDLE_INDEX}"' in text
    # checks at build time: the CUDA build and version of Paddle, OpenCV's import (libGL)
    assert "is_compiled_with_cuda" in text and "paddle.version.cuda()" in text
    assert "import cv2" in text and "libgl1" in text and "pip check" in text
    # exec form (no shell in between): tini forwards SIGTERM to rectrain
    assert 'ENTRYPOINT ["/usr/bin/tini", "--", "rectrain", "sagemaker", "entrypoint"]' in text
    assert 'CMD ["train"]' in text
    assert "[engine]" not in text.replace("The [engine] extra is not used", "")


def test_entrypoint_accepts_sagemakers_train_argument(tmp_path):
    env = {**ENV, "RECTRAIN_DEVICE": "cpu"}
    proc = _rectrain("sagemaker", "entrypoint", "train", "--ml-root", str(tmp_path), env=env)
    assert proc.returncode == 2
    assert (tmp_path / "output" / "failure").read_text(encoding="utf-8").startswith("ConfigError")


def test_on_demand_flag_overrides_spot_in_the_yaml(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text(f"role: {ROLE}\nimage: {IMAGE}\ntrain: s3://b/t\noutput: s3://b/o\nspot: true\n"
                   "training: {preset: crnn-mv3}\n", encoding="utf-8")
    spot = json.loads(_rectrain("sagemaker", "launch", "--job-config", str(job), "--dry-run").stdout)
    assert spot["EnableManagedSpotTraining"] is True
    proc = _rectrain("sagemaker", "launch", "--job-config", str(job), "--on-demand", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    request = json.loads(proc.stdout)
    assert request["EnableManagedSpotTraining"] is False
    assert "MaxWaitTimeInSeconds" not in request["StoppingCondition"]


def _valid_training_request(request):
    shape = botocore.session.get_session().get_service_model("sagemaker") \
        .operation_model("CreateTrainingJob").input_shape
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()


def test_keep_alive_flag_within_aws_limit():
    """--keep-alive sets the warm pool's KeepAlivePeriodInSeconds (botocore's model: 0..21600);
    over the limit, or with spot, exit 2 with the fix and nothing on stdout."""
    from rectrain.sagemaker.jobconfig import WARM_POOL_MAX_S

    limit = botocore.session.get_session().get_service_model("sagemaker") \
        .shape_for("KeepAlivePeriodInSeconds").metadata["max"]
    assert limit == WARM_POOL_MAX_S
    base = ("sagemaker", "launch", "--name", "x", "--role", ROLE, "--image", IMAGE, "--train", "s3://b/t",
            "--output", "s3://b/o", "--preset", "crnn-mv3", "--dry-run")
    proc = _rectrain(*base, "--keep-alive", "45m")
    assert proc.returncode == 0, proc.stderr
    request = json.loads(proc.stdout)
    _valid_training_request(request)
    assert request["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 2700
    for extra, why in ((("--keep-alive", "7h"), "21600"), (("--keep-alive", "30m", "--spot"), "spot")):
        bad = _rectrain(*base, *extra)
        assert bad.returncode == 2 and bad.stdout == "" and why in bad.stderr, bad.stderr
        assert "Fix:" in bad.stderr and "Traceback" not in bad.stderr


def test_an_image_that_does_not_say_its_cuda_is_refused_on_p5():
    base = ("sagemaker", "launch", "--name", "x", "--role", ROLE, "--train", "s3://b/t", "--output", "s3://b/o",
            "--preset", "crnn-mv3", "--instance-type", "ml.p5.48xlarge", "--dry-run")
    for image in (IMAGE.replace(":0.1.0", ":dev"), IMAGE.split(":")[0] + "@sha256:" + "c" * 64):
        bad = _rectrain(*base, "--image", image)
        assert bad.returncode == 2 and bad.stdout == "" and "--image-cuda 12.9" in bad.stderr, bad.stderr
    proc = _rectrain(*base, "--image", IMAGE.replace(":0.1.0", ":dev"), "--image-cuda", "12.9")
    assert proc.returncode == 0, proc.stderr
    _valid_training_request(json.loads(proc.stdout))
