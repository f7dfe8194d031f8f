"""S3 addresses, the boto3 client and the translation of S3 errors into user errors.

Every S3 call in rectrain goes through :func:`make_client`, so the same code talks to AWS S3
and to the embedded SeaweedFS: the endpoint comes from the argument, else from the standard
AWS configuration (``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``, profiles), which boto3
reads itself.
"""

from __future__ import annotations

import email.utils
import json
import posixpath
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, Optional
from urllib.parse import urlsplit

from rectrain.errors import (
    IntegrityError,
    PermissionProblem,
    RectrainError,
    StorageError,
)

DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class S3Uri:
    """``s3://bucket/key``. ``key`` never starts with a slash; it may be empty (bucket root)."""

    bucket: str
    key: str = ""

    @classmethod
    def parse(cls, text: str) -> S3Uri:
        if isinstance(text, S3Uri):
            return text
        raw = str(text).strip()
        if not raw.startswith("s3://"):
            raise StorageError(
                f"'{raw}' is not an S3 address.",
                "write it as s3://bucket/prefix (for example s3://my-bucket/datasets/thai).",
            )
        rest = raw[len("s3://") :]
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise StorageError(f"'{raw}' has no bucket name.", "write it as s3://bucket/prefix.")
        if any(c in bucket for c in " \\") or len(bucket) < 3 or len(bucket) > 63:
            raise StorageError(
                f"'{bucket}' in '{raw}' is not a valid bucket name.",
                "bucket names are 3-63 characters: lowercase letters, digits, '.' and '-'.",
            )
        return cls(bucket, key.lstrip("/"))

    def join(self, *parts: str) -> S3Uri:
        pieces = [self.key.rstrip("/")] if self.key.strip("/") else []
        for part in parts:
            part = str(part).strip("/")
            if part:
                pieces.append(part)
        return S3Uri(self.bucket, "/".join(pieces))

    @property
    def prefix(self) -> str:
        """The key as a folder prefix: '' for the bucket root, else ending with '/'."""
        key = self.key
        if not key:
            return ""
        return key if key.endswith("/") else key + "/"

    @property
    def name(self) -> str:
        return posixpath.basename(self.key.rstrip("/"))

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def make_client(
    endpoint_url: Optional[str] = None,
    *,
    profile: Optional[str] = None,
    region: Optional[str] = None,
    max_attempts: int = 6,
    connect_timeout: float = 10,
    read_timeout: float = 60,
    max_pool_connections: int = 64,
    retry_mode: str = "adaptive",
) -> Any:
    """A boto3 S3 client. Thread-safe: share one client between the transfer threads.

    ``endpoint_url=None`` lets boto3 take the endpoint from ``AWS_ENDPOINT_URL_S3`` /
    ``AWS_ENDPOINT_URL`` or the profile's ``endpoint_url`` (and AWS S3 otherwise).
    Throttling (SlowDown, 503) and 5xx errors are retried with exponential backoff;
    ``adaptive`` also slows the client down when S3 throttles.
    """
    import boto3
    import botocore.exceptions
    from botocore.config import Config

    try:
        session = boto3.session.Session(profile_name=profile)
    except botocore.exceptions.ProfileNotFound as exc:
        raise StorageError(
            f"AWS profile '{profile}' is not configured.",
            "check the name with `aws configure list-profiles`, or leave out --profile "
            "to use AWS_* environment variables.",
        ) from exc
    region = region or session.region_name or DEFAULT_REGION
    config = Config(
        region_name=region,
        signature_version="s3v4",  # presigned URLs too (the default for them is SigV2)
        # rectrain sends its own SHA-256 with every upload and hashes every download itself:
        # botocore's default CRC32 on top would only cost CPU
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": max_attempts, "mode": retry_mode},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=max_pool_connections,
        tcp_keepalive=True,
    )
    _fast_timestamps(session)
    kwargs: Dict[str, Any] = {"config": config}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    try:
        return session.client("s3", **kwargs)
    except ValueError as exc:  # a malformed endpoint URL
        raise StorageError(
            f"S3 endpoint '{endpoint_url}' is not a valid URL: {exc}.",
            "write it as http://host:port or https://host.",
        ) from exc


def _parse_timestamp(value: Any) -> Any:
    """botocore parses every LastModified with dateutil (about 1 ms each); ISO 8601 and HTTP dates
    have faster exact parsers."""
    if isinstance(value, str):
        try:
            if value.endswith("GMT"):
                return email.utils.parsedate_to_datetime(value)
            if "T" in value:
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except (ValueError, TypeError):
            pass
    from botocore.utils import parse_timestamp

    return parse_timestamp(value)


def _fast_timestamps(session: Any) -> None:
    try:
        factory = session._session.get_component("response_parser_factory")  # noqa: SLF001
        factory.set_parser_defaults(timestamp_parser=_parse_timestamp)
    except Exception:  # noqa: BLE001 - an optimisation only
        pass


def client_endpoint(client: Any) -> str:
    return str(getattr(client.meta, "endpoint_url", "") or "")


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", "") or "")
    return ""


def iam_statement(action: str, resource: str) -> Dict[str, Any]:
    """The IAM policy statement that grants ``action`` on ``resource`` (an s3:// address)."""
    try:
        uri = S3Uri.parse(resource)
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


def translate_error(exc: BaseException, action: str, resource: str) -> RectrainError:
    """Turn a boto3/botocore exception into a rectrain error naming ``action`` (an IAM action such as
    ``s3:PutObject``) and ``resource`` (an s3:// address). Use as ``raise translate_error(...) from exc``.
    Never includes credentials."""
    import botocore.exceptions as bex

    if isinstance(exc, RectrainError):
        return exc
    code = error_code(exc)
    if code in ("AccessDenied", "403", "AllAccessDisabled", "AccountProblem") or (code == "Forbidden"):
        return PermissionProblem(
            f"S3 denied {action} on {resource}.",
            permission_fix(action, resource),
            action=action,
            resource=resource,
        )
    if code in ("NoSuchBucket",) or (code == "404" and action in ("s3:ListBucket", "s3:HeadBucket")):
        bucket = resource[len("s3://") :].split("/", 1)[0] if resource.startswith("s3://") else resource
        return StorageError(
            f"Bucket '{bucket}' does not exist ({action} on {resource}).",
            f"check the bucket name and region, or create it (`aws s3 mb s3://{bucket}`).",
        )
    if code in ("NoSuchKey", "404", "NotFound"):
        return StorageError(f"{resource} does not exist.", "check the address with `rectrain s3 ls`.")
    if code in ("InvalidAccessKeyId",):
        return StorageError(
            f"The access key is not known to the S3 endpoint ({action} on {resource}).",
            "check AWS_ACCESS_KEY_ID / your profile, and that the endpoint "
            "(AWS_ENDPOINT_URL / --endpoint-url) is the one the keys belong to.",
        )
    if code in ("SignatureDoesNotMatch",):
        return StorageError(
            f"The secret key does not match the access key ({action} on {resource}).",
            "check AWS_SECRET_ACCESS_KEY / your profile.",
        )
    if code in ("ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired", "InvalidToken"):
        return StorageError(
            f"The AWS session token has expired or is invalid ({action} on {resource}).",
            "refresh your credentials (for SSO: `aws sso login`), then rerun: finished "
            "transfers are kept and skipped.",
        )
    if code in ("BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest"):
        return IntegrityError(
            f"S3 rejected {resource}: the data did not match its checksum in transit.",
            "rerun the command; if it repeats, check the network or disk.",
        )
    if code in (
        "SlowDown",
        "ServiceUnavailable",
        "503",
        "InternalError",
        "500",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
    ):
        return StorageError(
            f"S3 kept failing with {code} for {action} on {resource} after retries.",
            "rerun later, or lower --workers; finished transfers are kept and skipped.",
        )
    if isinstance(exc, bex.NoCredentialsError):
        return StorageError(
            "No AWS credentials found.",
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, use --profile, or run "
            "`aws configure` (for the embedded server: `rectrain s3 serve` prints them).",
        )
    if isinstance(exc, (bex.EndpointConnectionError, bex.ConnectTimeoutError)):
        url = getattr(exc, "kwargs", {}).get("endpoint_url", "") or ""
        if url:
            parts = urlsplit(url)
            url = f"{parts.scheme}://{parts.netloc}"
        return StorageError(
            f"Cannot reach the S3 endpoint {url} ({action} on {resource}).",
            "check AWS_ENDPOINT_URL / --endpoint-url and the network; for the embedded "
            "server run `rectrain s3 serve` first.",
        )
    if isinstance(exc, (bex.ReadTimeoutError, bex.ConnectionClosedError, bex.ResponseStreamingError)):
        return StorageError(
            f"The connection to S3 broke during {action} on {resource}.",
            "rerun the command: finished transfers are kept and skipped.",
        )
    if isinstance(exc, bex.FlexibleChecksumError):
        return IntegrityError(
            f"{resource} failed its checksum on download: {exc}.",
            "rerun the pull; if it repeats the object on S3 is damaged: upload it again.",
        )
    if isinstance(exc, bex.ClientError):
        message = getattr(exc, "response", {}).get("Error", {}).get("Message", "") or str(exc)
        return StorageError(
            f"S3 error {code or 'unknown'} for {action} on {resource}: {message}",
            "check the address and your permissions with `rectrain s3 check`.",
        )
    if isinstance(exc, bex.BotoCoreError):
        return StorageError(
            f"S3 request failed for {action} on {resource}: {exc}",
            "check the endpoint and credentials with `rectrain s3 check`.",
        )
    if isinstance(exc, OSError):
        return StorageError(
            f"Local file error during {action} on {resource}: {exc}",
            "check free disk space and permissions of the local folder.",
        )
    return StorageError(
        f"{action} on {resource} failed: {type(exc).__name__}: {exc}",
        "rerun with --log-level debug and report it if it repeats.",
    )
