"""Send a training job: build the request, check the inputs exist, ``create_training_job``."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from rectrain.errors import DataError
from rectrain.logs import get_logger
from rectrain.redaction import redact
from rectrain.sagemaker import aws
from rectrain.sagemaker.jobconfig import JobConfig, secret_warnings
from rectrain.sagemaker.request import build_training_job_request
from rectrain.storage.objects import list_objects
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import S3Service

log = get_logger("sagemaker.launch")


@dataclass
class LaunchResult:
    job_name: str
    request: Dict[str, Any]
    sent: bool
    arn: Optional[str] = None
    warnings: List[str] = field(default_factory=list)


def preflight_inputs(request: Dict[str, Any], s3: S3Service) -> None:
    """Every input channel must hold at least one object: a typo in a prefix otherwise costs an
    instance start-up (minutes) before SageMaker fails. Raises :class:`DataError`."""
    for channel in request.get("InputDataConfig", []):
        uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
        if not list_objects(s3, S3Uri.parse(uri), folder=False, limit=1):  # S3Prefix: a key prefix
            fix = ("upload the data first (`rectrain s3 push` / `rectrain data pack`), or fix the prefix "
                   "(rectrain sends every prefix as a folder, ending with '/').")
            if channel["ChannelName"] == "pretrained":
                fix = ("name the weights in full (training.pretrained: s3://.../name.pdparams) or the "
                       "folder that holds them.")
            raise DataError(f"channel '{channel['ChannelName']}' is empty: nothing under {uri}.", fix,
                            path=uri)


def preflight_regions(request: Dict[str, Any], job: JobConfig, sm: Any, s3: S3Service) -> None:
    """The image's ECR region and every bucket's region must be the job's region (a custom S3
    endpoint, such as a local server, has no regions to compare)."""
    from rectrain.errors import ConfigError
    from rectrain.sagemaker.request import bucket_region_problems, region_problems

    region = job.region or sm.meta.region_name
    problems = region_problems(request["AlgorithmSpecification"]["TrainingImage"], region)
    if not job.endpoint_url:
        try:
            problems += bucket_region_problems(request, region, s3)
        except Exception as exc:  # noqa: BLE001 - turned into a user message
            raise aws.aws_error(exc, "s3:GetBucketLocation", request["OutputDataConfig"]["S3OutputPath"]) \
                from exc
    if problems:
        message, _, fix = problems[0].partition(" Fix: ")
        raise ConfigError(message + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""), fix)


def gpu_warnings(job: JobConfig) -> List[str]:
    from rectrain.machine.instances import is_gpu_instance

    if not is_gpu_instance(job.instance_type):
        return [f"{job.instance_type} has no GPU: training will run on the CPU (slow). "
                "Use ml.g5.xlarge or another GPU instance (docs/sagemaker.md)."]
    return []


def image_cuda_from_ecr(job: JobConfig, ecr: Any = None) -> JobConfig:
    """On the types only the CUDA 12.9 build runs (Hopper, Blackwell): the image's own
    ``com.rectrain.cuda`` label, read from ECR, decides, over what its tag or ``image_cuda``
    claim. A label that contradicts them: :class:`ConfigError`. No label, or ECR unreadable: the
    claim stands (with a warning; the container checks again at start), and without a claim
    the request builder refuses the image with the fix."""
    import dataclasses

    from rectrain.errors import ConfigError, UserError
    from rectrain.machine.instances import (
        DEFAULT_VARIANT,
        IMAGE_VARIANTS,
        family_of,
        parse_image_cuda,
        variant_of_image,
    )
    from rectrain.sagemaker.image import CUDA_LABEL, image_cuda_label

    fam = family_of(job.instance_type)
    if not job.image or fam is None or fam.gpu_cc is None \
            or fam.gpu_cc <= IMAGE_VARIANTS[DEFAULT_VARIANT]["max_cc"]:  # type: ignore[operator]
        return job
    claim = variant_of_image(job.image) or (parse_image_cuda(job.image_cuda) if job.image_cuda else None)
    try:
        label = image_cuda_label(job.image, ecr or aws.client("ecr", job.region, job.profile))
    except UserError as exc:
        if claim is None:
            raise UserError(f"{job.image} does not say which CUDA build it is, and its label cannot be read "
                            f"from ECR: {exc.message}", f"pass --image-cuda 11.8|12.9, or {exc.fix}") from exc
        log.warning("warning: could not read %s's %s label from ECR (%s); trusting its tag / --image-cuda",
                    job.image, CUDA_LABEL, exc.message)
        return job
    if label is None:
        if claim is not None:
            log.warning("warning: %s has no %s label (not built from docker/Dockerfile?); trusting its tag / "
                        "--image-cuda", job.image, CUDA_LABEL)
        return job
    found = parse_image_cuda(label, f"{job.image}'s label {CUDA_LABEL}")
    if claim is not None and claim != found:
        raise ConfigError(f"{job.image} was built with CUDA {IMAGE_VARIANTS[found]['cuda']} (its "
                          f"{CUDA_LABEL} label) but its tag or --image-cuda says CUDA "
                          f"{IMAGE_VARIANTS[claim]['cuda']}.",
                          "use the image built for this instance type (`rectrain sagemaker image "
                          f"--instance-type {job.instance_type} --build --push`) and fix the tag or flag.")
    log.info("%s: CUDA %s build (its %s label in ECR)", job.image, IMAGE_VARIANTS[found]["cuda"], CUDA_LABEL)
    return dataclasses.replace(job, image_cuda=str(IMAGE_VARIANTS[found]["cuda"]))


def isolation_warnings(job: JobConfig) -> List[str]:
    if job.network_isolation and job.mlflow_uri and not str(job.mlflow_uri).startswith("arn:"):
        return [f"network_isolation: true: the container cannot reach {redact(job.mlflow_uri)}; "
                "nothing will be tracked in MLflow (TensorBoard events still reach S3)."]
    return []


def launch_training_job(job: JobConfig, *, dry_run: bool = False, sagemaker_client: Any = None,
                        s3: Optional[S3Service] = None, preflight: bool = True,
                        now: Optional[_dt.datetime] = None, ecr_client: Any = None) -> LaunchResult:
    """Build and (unless ``dry_run``) send the ``CreateTrainingJob`` request.

    With ``dry_run`` nothing is contacted. Returns the request and the job ARN. S3 (the
    preflight of the inputs) is reached through ``s3`` (default: the job config's). Before a
    real launch on Hopper/Blackwell the image's CUDA label is read from ECR
    (:func:`image_cuda_from_ecr`)."""
    if not dry_run and preflight:
        job = image_cuda_from_ecr(job, ecr_client)
    request = build_training_job_request(job, now)
    result = LaunchResult(job_name=request["TrainingJobName"], request=request, sent=False,
                          warnings=gpu_warnings(job) + secret_warnings(job) + isolation_warnings(job))
    for warning in result.warnings:
        log.warning("warning: %s", warning)
    if dry_run:
        return result
    if preflight:
        s3 = s3 or aws.s3_for(job)
        preflight_inputs(request, s3)
    sm = sagemaker_client or aws.client("sagemaker", job.region, job.profile)
    if preflight:
        assert s3 is not None
        preflight_regions(request, job, sm, s3)
    try:
        response = sm.create_training_job(**request)
    except Exception as exc:  # noqa: BLE001 - turned into a user message
        raise aws.aws_error(exc, "sagemaker:CreateTrainingJob", request["TrainingJobName"]) from exc
    result.sent = True
    result.arn = response.get("TrainingJobArn")
    log.info("started %s (%s)", result.job_name, result.arn)
    return result
