"""Send a training job: build the request, check the inputs exist, ``create_training_job``."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from rectrain.errors import DataError
from rectrain.logs import get_logger
from rectrain.sagemaker import aws
from rectrain.sagemaker.jobconfig import JobConfig
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
            raise DataError(f"channel '{channel['ChannelName']}' is empty: nothing under {uri}.",
                            "upload the data first (`rectrain s3 push` / `rectrain data pack`), or fix "
                            "the prefix.", path=uri)


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


def launch_training_job(job: JobConfig, *, dry_run: bool = False, sagemaker_client: Any = None,
                        s3: Optional[S3Service] = None, preflight: bool = True,
                        now: Optional[_dt.datetime] = None) -> LaunchResult:
    """Build and (unless ``dry_run``) send the ``CreateTrainingJob`` request.

    With ``dry_run`` nothing is contacted. Returns the request and the job ARN. S3 (the
    preflight of the inputs) is reached through ``s3`` (default: the job config's)."""
    request = build_training_job_request(job, now)
    result = LaunchResult(job_name=request["TrainingJobName"], request=request, sent=False,
                          warnings=gpu_warnings(job))
    if dry_run:
        return result
    for warning in result.warnings:
        log.warning("warning: %s", warning)
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
