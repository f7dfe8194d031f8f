"""boto3 clients for SageMaker and CloudWatch Logs, with AWS errors turned into user messages
that name the action and the fix. S3 is reached through :class:`rectrain.storage.service.S3Service`
(:func:`s3_for` builds the one a job config describes)."""

from __future__ import annotations

from typing import Any, Optional

from rectrain.errors import EnvironmentProblem, RectrainError, UserError
from rectrain.storage.aws_errors import error_code, translate_error
from rectrain.storage.service import S3Service, bounded_config

GUIDE = "docs/sagemaker.md"


def session(region: Optional[str] = None, profile: Optional[str] = None) -> Any:
    import boto3  # boto stays out of `rectrain --help`'s start-up
    import botocore.exceptions

    try:
        return boto3.Session(region_name=region, profile_name=profile)
    except botocore.exceptions.ProfileNotFound as exc:
        raise EnvironmentProblem(f"AWS profile {profile!r} not found.",
                                 "run `aws configure --profile NAME` or pass another --profile.") from exc


def s3_for(job: Any) -> S3Service:
    """The S3 service of a job config: its endpoint (a local server), profile and region."""
    return S3Service(getattr(job, "endpoint_url", None), profile=getattr(job, "profile", None),
                     region=getattr(job, "region", None))


def client(service: str, region: Optional[str] = None, profile: Optional[str] = None,
           endpoint_url: Optional[str] = None) -> Any:
    """A SageMaker or CloudWatch Logs client (S3: :func:`s3_for` / ``S3Service``)."""
    if service == "s3":
        raise ValueError("S3 goes through rectrain.storage.service.S3Service, not a client of its own")
    sess = session(region, profile)
    if not sess.region_name:
        raise EnvironmentProblem(f"no AWS region set for {service}.",
                                 "pass --region us-east-1 (or set region: in the job config, or "
                                 "AWS_DEFAULT_REGION).")
    return sess.client(service, endpoint_url=endpoint_url, config=bounded_config())


def aws_error(exc: Exception, action: str, resource: str = "") -> RectrainError:
    """A user error for a failed SageMaker / CloudWatch Logs call: the errors only SageMaker
    has here, the rest (denied, credentials, endpoint, throttling) as storage translates them."""
    code = error_code(exc)
    message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", "") or exc)
    if code == "ResourceLimitExceeded":
        return UserError(f"{action}: {message}",
                         "ask for a quota increase in Service Quotas (SageMaker, '<instance> for "
                         "training job usage' / 'for spot training job usage'), or pick another "
                         "instance type.")
    if code in ("ResourceNotFound", "ValidationException") and "not found" in message.lower():
        return UserError(f"{action}: {message}", "check the job name and the region.")
    return translate_error(exc, action, resource, guide=GUIDE)


def call(fn: Any, action: str, resource: str, **kwargs: Any) -> Any:
    """``fn(**kwargs)`` (a boto3 client method), its botocore errors as :func:`aws_error`."""
    try:
        return fn(**kwargs)
    except Exception as exc:  # noqa: BLE001 - translated at the boundary
        if type(exc).__module__.startswith("botocore"):
            raise aws_error(exc, action, resource) from exc
        raise
