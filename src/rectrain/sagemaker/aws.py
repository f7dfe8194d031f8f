"""boto3 clients for SageMaker, CloudWatch Logs and S3, with AWS errors turned into user
messages that name the action and the fix."""

from __future__ import annotations

from typing import Any, Optional

from rectrain.errors import EnvironmentProblem, PermissionProblem, StorageError, UserError

_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AccessDeniedError"}


def session(region: Optional[str] = None, profile: Optional[str] = None) -> Any:
    import boto3
    import botocore.exceptions

    try:
        return boto3.Session(region_name=region, profile_name=profile)
    except botocore.exceptions.ProfileNotFound as exc:
        raise EnvironmentProblem(f"AWS profile {profile!r} not found.",
                                 "run `aws configure --profile NAME` or pass another --profile.") from exc


def client(service: str, region: Optional[str] = None, profile: Optional[str] = None,
           endpoint_url: Optional[str] = None) -> Any:
    sess = session(region, profile)
    if service != "s3" and not sess.region_name:
        raise EnvironmentProblem(f"no AWS region set for {service}.",
                                 "pass --region us-east-1 (or set region: in the job config, or "
                                 "AWS_DEFAULT_REGION).")
    return sess.client(service, endpoint_url=endpoint_url)


def aws_error(exc: Exception, action: str, resource: str = "") -> UserError:
    """A :class:`UserError` for a botocore ``ClientError`` / credentials error."""
    import botocore.exceptions

    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return EnvironmentProblem(f"no AWS credentials for {action}.",
                                  "run `aws configure` or set AWS_PROFILE / AWS_ACCESS_KEY_ID.")
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return StorageError(f"{action}: cannot reach {exc.kwargs.get('endpoint_url', 'the AWS endpoint')}.",
                            "check the network, the region and --endpoint-url.")
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        code = err.get("Code", "")
        message = err.get("Message", str(exc))
        if code in _DENIED:
            return PermissionProblem(f"{action} was denied on {resource or 'the resource'}: {message}",
                                     f"allow {action} for your user/role (see the IAM policies in "
                                     "docs/sagemaker.md).", action=action, resource=resource)
        if code == "ResourceLimitExceeded":
            return UserError(f"{action}: {message}",
                             "ask for a quota increase in Service Quotas (SageMaker, '<instance> for "
                             "training job usage' / 'for spot training job usage'), or pick another "
                             "instance type.")
        if code in ("ResourceNotFound", "ValidationException") and "not found" in message.lower():
            return UserError(f"{action}: {message}", "check the job name and the region.")
        return UserError(f"{action} failed ({code}): {message}", "read the message above; "
                         "see docs/sagemaker.md for the usual causes.")
    return UserError(f"{action} failed: {exc}", "check your AWS set-up (docs/sagemaker.md).")
