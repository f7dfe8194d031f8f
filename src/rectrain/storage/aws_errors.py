"""AWS errors at the boundary: a boto3/botocore exception becomes a rectrain error that names the
action (an IAM action such as ``s3:PutObject`` or ``sagemaker:CreateTrainingJob``), the resource
and the fix, with the original exception kept as its cause (``raise translate_error(...) from exc``).

One implementation for every AWS call rectrain makes: S3 here in ``storage``, SageMaker and
CloudWatch Logs through :func:`rectrain.sagemaker.aws.aws_error`, which adds the few errors only
SageMaker has. Messages never include credentials.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Type
from urllib.parse import urlsplit

from rectrain.errors import (
    EnvironmentProblem,
    IntegrityError,
    InternalError,
    PermissionProblem,
    RectrainError,
    StorageError,
    UserError,
)
from rectrain.storage.s3 import S3Uri

DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AccessDeniedError",
        "UnauthorizedOperation",
        "AllAccessDisabled",
        "AccountProblem",
        "Forbidden",
        "403",
    }
)
THROTTLED_CODES = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "503",
        "InternalError",
        "500",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
    }
)
_SERVICES = {"s3": "S3", "sagemaker": "SageMaker", "logs": "CloudWatch Logs", "sts": "STS", "ecr": "ECR"}


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` ('' for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", "") or "")
    return ""


def iam_statement(action: str, resource: str) -> Dict[str, Any]:
    """The IAM policy statement that grants ``action`` on ``resource`` (an s3:// address)."""
    try:
        uri: Optional[S3Uri] = S3Uri.parse(resource)
    except StorageError:
        uri = None
    if uri is None:
        return {"Effect": "Allow", "Action": [action], "Resource": [resource]}
    if action in ("s3:ListBucket", "s3:GetBucketLocation"):
        statement: Dict[str, Any] = {
            "Effect": "Allow",
            "Action": [action],
            "Resource": [f"arn:aws:s3:::{uri.bucket}"],
        }
        if uri.key and action == "s3:ListBucket":
            statement["Condition"] = {"StringLike": {"s3:prefix": [f"{uri.prefix}*"]}}
        return statement
    pattern = f"{uri.prefix}*" if uri.key else "*"
    return {"Effect": "Allow", "Action": [action], "Resource": [f"arn:aws:s3:::{uri.bucket}/{pattern}"]}


def permission_fix(action: str, resource: str) -> str:
    return (
        "ask your AWS administrator to add this statement to the IAM policy of the identity you "
        "use (see `rectrain s3 check`): " + json.dumps(iam_statement(action, resource))
    )


def _endpoint_of(exc: BaseException) -> str:
    """``scheme://host:port`` of the request that failed (botocore keeps its URL)."""
    url = getattr(exc, "kwargs", {}).get("endpoint_url", "") or ""
    if url:
        parts = urlsplit(url)
        url = f"{parts.scheme}://{parts.netloc}"
    return url


def _network_error(exc: BaseException, service: str, where: str, s3: bool, setup: Type[UserError],
                   failed: Type[UserError]) -> Optional[UserError]:
    """An endpoint that cannot be reached, or that accepted the connection and never answered
    (the bounded waits of S3Options ran out), naming the endpoint; None for other errors."""
    import botocore.exceptions as bex

    if isinstance(exc, (bex.EndpointConnectionError, bex.ConnectTimeoutError)):
        return setup(
            f"Cannot reach the {service} endpoint {_endpoint_of(exc)} ({where}).",
            "check AWS_ENDPOINT_URL / --endpoint-url and the network; for the embedded server run "
            "`rectrain s3 serve` first."
            if s3
            else "check the network, the region and --endpoint-url.",
        )
    if isinstance(exc, bex.ReadTimeoutError):
        return failed(
            f"The {service} endpoint {_endpoint_of(exc)} accepted the connection but did not answer "
            f"({where}); rectrain gave up after its bounded retries.",
            "check that AWS_ENDPOINT_URL / --endpoint-url points at a working S3 server (a proxy or "
            "firewall may swallow replies), then rerun: finished transfers are kept and skipped."
            if s3 else "check the network and the endpoint, then rerun.",
        )
    if isinstance(exc, (bex.ConnectionClosedError, bex.ResponseStreamingError)):
        return failed(
            f"The connection to {service} broke during {where}.",
            "rerun the command: finished transfers are kept and skipped.",
        )
    return None


def translate_error(
    exc: BaseException, action: str, resource: str, *, guide: str = "the rectrain docs"
) -> RectrainError:
    """Turn a boto3/botocore exception into a rectrain error naming ``action`` and ``resource``
    (an s3:// address for S3 actions). ``guide`` is where the user reads about the permissions
    and usual failures of a service other than S3 (e.g. ``docs/sagemaker.md``)."""
    import botocore.exceptions as bex  # boto stays out of `rectrain --help`'s start-up

    if isinstance(exc, RectrainError):
        return exc
    s3 = action.startswith("s3:")
    service = _SERVICES.get(action.split(":", 1)[0], "AWS")
    setup: Type[UserError] = StorageError if s3 else EnvironmentProblem
    failed: Type[UserError] = StorageError if s3 else UserError
    code = error_code(exc)
    where = f"{action} on {resource}" if resource else action
    if code in DENIED_CODES:
        message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", "") or "")
        message = message.rstrip(".")
        detail = "" if message.lower() in ("", "access denied", "forbidden") else f": {message}"
        fix = (
            permission_fix(action, resource)
            if s3
            else f"allow {action} for your user/role (see the IAM policies in {guide})."
        )
        return PermissionProblem(
            f"{action} was denied on {resource or 'the resource'}{detail}.",
            fix,
            action=action,
            resource=resource,
        )
    if s3:
        found = _s3_error(code, action, resource)
        if found is not None:
            return found
    if code in ("InvalidAccessKeyId", "InvalidClientTokenId", "UnrecognizedClientException"):
        return setup(
            f"The access key is not known to the {service} endpoint ({where}).",
            "check AWS_ACCESS_KEY_ID / your profile, and that the endpoint "
            "(AWS_ENDPOINT_URL / --endpoint-url) is the one the keys belong to.",
        )
    if code in ("SignatureDoesNotMatch", "InvalidSignatureException"):
        return setup(
            f"The secret key does not match the access key ({where}).",
            "check AWS_SECRET_ACCESS_KEY / your profile.",
        )
    if code in ("ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired", "InvalidToken"):
        return setup(
            f"The AWS session token has expired or is invalid ({where}).",
            "refresh your credentials (for SSO: `aws sso login`), then rerun"
            + (": finished transfers are kept and skipped." if s3 else "."),
        )
    if code in THROTTLED_CODES:
        return failed(
            f"{service} kept failing with {code} for {where} after retries.",
            "rerun later, or lower --workers; finished transfers are kept and skipped."
            if s3
            else "rerun later.",
        )
    if isinstance(exc, bex.NoCredentialsError):
        return setup(
            "No AWS credentials found.",
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, use --profile, or run `aws configure`"
            + (" (for the embedded server: `rectrain s3 serve` prints them)." if s3 else "."),
        )
    network = _network_error(exc, service, where, s3, setup, failed)
    if network is not None:
        return network
    if isinstance(exc, bex.ClientError):
        message = getattr(exc, "response", {}).get("Error", {}).get("Message", "") or str(exc)
        if s3:
            return StorageError(
                f"S3 error {code or 'unknown'} for {where}: {message}",
                "check the address and your permissions with `rectrain s3 check`.",
            )
        return UserError(
            f"{action} failed ({code}): {message}",
            f"read the message above; see {guide} for the usual causes.",
        )
    if not s3:
        return UserError(f"{action} failed: {exc}", f"check your AWS set-up ({guide}).")
    if isinstance(exc, bex.FlexibleChecksumError):
        return IntegrityError(
            f"{resource} failed its checksum on download: {exc}.",
            "rerun the pull; if it repeats the object on S3 is damaged: upload it again.",
        )
    if isinstance(exc, bex.BotoCoreError):
        return StorageError(
            f"S3 request failed for {where}: {exc}",
            "check the endpoint and credentials with `rectrain s3 check`.",
        )
    if isinstance(exc, OSError):
        return StorageError(
            f"Local file error during {where}: {exc}",
            "check free disk space and permissions of the local folder.",
        )
    # not boto, not the OS: a bug (a TypeError in a progress callback ...), never a user error
    return InternalError(
        f"{where} failed: {type(exc).__name__}: {exc}",
        "rerun with --log-level debug (it prints the traceback) and report it.",
    )


def _s3_error(code: str, action: str, resource: str) -> Optional[RectrainError]:
    """The errors only S3 has: a missing bucket or key, a checksum the server rejected."""
    if code == "NoSuchBucket" or (code == "404" and action in ("s3:ListBucket", "s3:HeadBucket")):
        bucket = resource[len("s3://") :].split("/", 1)[0] if resource.startswith("s3://") else resource
        return StorageError(
            f"Bucket '{bucket}' does not exist ({action} on {resource}).",
            f"check the bucket name and region, or create it (`aws s3 mb s3://{bucket}`).",
        )
    if code in ("NoSuchKey", "404", "NotFound"):
        return StorageError(f"{resource} does not exist.", "check the address with `rectrain s3 ls`.")
    if code in ("BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest"):
        return IntegrityError(
            f"S3 rejected {resource}: the data did not match its checksum in transit.",
            "rerun the command; if it repeats, check the network or disk.",
        )
    return None
