"""S3 addresses and the boto3 client (errors are translated in :mod:`rectrain.storage.aws_errors`).

Every S3 call in rectrain goes through :func:`make_client`, so the same code talks to AWS S3
and to the embedded SeaweedFS: the endpoint comes from the argument, else from the standard
AWS configuration (``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``, profiles), which boto3
reads itself.
"""

from __future__ import annotations

import email.utils
import posixpath
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, Optional

from rectrain.errors import StorageError

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
