"""The one door to S3: :class:`S3Service` owns the boto3 client and everything it is built from.

An entry point (the CLI, a Python API function, the demo, the in-job program) builds one
service from what the user gave (``--endpoint-url``, ``--profile``, ``--region``,
``--no-fastpath``) and passes it down; library functions take the service and ``S3Uri``
values, never ``(client, endpoint_url)`` pairs, and never build clients of their own
(tests/test_architecture.py fails when code outside ``rectrain.storage`` builds an S3 client).
So every S3 request rectrain makes has the same endpoint, credentials, TLS settings, timeouts
and retries, and a new command cannot forget one of them.

The endpoint comes from the argument, else from the standard AWS configuration
(``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``, profiles), which boto3 reads itself; the same
code talks to AWS S3 and to the embedded SeaweedFS. Errors are translated at this boundary
(:mod:`rectrain.storage.aws_errors`), cause kept.
"""

from __future__ import annotations

import dataclasses
import email.utils
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, Optional, Union

from rectrain.errors import StorageError
from rectrain.storage.aws_errors import error_code, translate_error
from rectrain.storage.fastpath import FastPath
from rectrain.storage.s3 import S3Uri

DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class S3Options:
    """What an S3 client is built from (one place for timeouts and retries)."""

    endpoint_url: Optional[str] = None
    profile: Optional[str] = None
    region: Optional[str] = None
    access_key: Optional[str] = None  # explicit keys (the embedded server); else boto3's chain
    secret_key: Optional[str] = None
    verify: Union[None, bool, str] = None  # TLS: None = boto3's default (AWS_CA_BUNDLE ...)
    fastpath: bool = True  # small GETs/PUTs on presigned URLs (storage.fastpath)
    # Bounded waits, for every request (the client and the fast path): a server that accepts
    # the connection and never answers fails in about max_attempts x read_timeout (under a
    # minute), naming the endpoint. read_timeout is the longest silence within one response,
    # not a limit on a transfer's length.
    max_attempts: int = 3
    connect_timeout: float = 5
    read_timeout: float = 15
    max_pool_connections: int = 64
    retry_mode: str = "adaptive"


class S3Service:
    """One S3 endpoint with one client (thread-safe: transfer threads share it), built on
    first use. ``with_options`` gives a service with other timeouts or retries (the permission
    preflight answers fast); :meth:`call` is the door for single requests."""

    def __init__(self, endpoint_url: Optional[str] = None, **options: Any) -> None:
        self.options = S3Options(endpoint_url=endpoint_url or None, **options)
        self._client: Any = None
        self._lock = threading.Lock()

    @classmethod
    def for_workers(cls, endpoint_url: Optional[str] = None, workers: int = 16,
                    **options: Any) -> S3Service:
        """A service whose connection pool fits ``workers`` transfer threads."""
        options.setdefault("max_pool_connections", max(int(workers) + 4, 10))
        return cls(endpoint_url, **options)

    def with_options(self, **changes: Any) -> S3Service:
        fields = dataclasses.asdict(self.options)
        fields.update(changes)
        endpoint = fields.pop("endpoint_url")
        return S3Service(endpoint, **fields)

    @property
    def endpoint_url(self) -> Optional[str]:
        """The endpoint the user gave (None: boto3's configuration decides)."""
        return self.options.endpoint_url

    @property
    def resolved_endpoint(self) -> str:
        """The endpoint requests go to (AWS's own address when none was configured)."""
        return str(getattr(self.client.meta, "endpoint_url", "") or "")

    @property
    def fastpath(self) -> bool:
        return self.options.fastpath

    @property
    def client(self) -> Any:
        """The boto3 client: for ``rectrain.storage``'s own transfer code only."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = make_client(self.options)
        return self._client

    def has_credentials(self) -> bool:
        """Whether credentials are configured (given keys, or boto3's chain finds some); asks
        no server."""
        if self.options.access_key and self.options.secret_key:
            return True
        import boto3

        try:
            session = boto3.session.Session(profile_name=self.options.profile)
        except Exception:  # noqa: BLE001 - a missing profile: the client raises it with its fix
            return False
        return session.get_credentials() is not None

    def fast_path(self, maxsize: int = 16) -> Optional[FastPath]:
        """The small-object fast path for ``maxsize`` threads, or None when switched off
        (``--no-fastpath``, ``RECTRAIN_NO_FASTPATH=1``)."""
        return FastPath(self.client, maxsize=maxsize, attempts=1) if self.fastpath else None

    def call(self, operation: str, action: str, resource: Union[str, S3Uri], **params: Any) -> Any:
        """``client.<operation>(**params)``, a boto/OS error translated into a rectrain error
        naming the IAM ``action`` and the ``resource`` (cause kept)."""
        try:
            return getattr(self.client, operation)(**params)
        except Exception as exc:
            raise translate_error(exc, action, str(resource)) from exc

    # ---------------------------------------------------------------- single requests
    def read_bytes(self, uri: S3Uri) -> bytes:
        """The bytes of a small object (a marker, a pointer, metrics.jsonl), unverified."""
        response = self.call("get_object", "s3:GetObject", uri, Bucket=uri.bucket, Key=uri.key)
        try:
            return bytes(response["Body"].read())
        except Exception as exc:
            raise translate_error(exc, "s3:GetObject", str(uri)) from exc

    def put_bytes(self, uri: S3Uri, data: bytes) -> None:
        """A plain PUT (no checksum of rectrain's: what SageMaker's own agent sends)."""
        self.call("put_object", "s3:PutObject", uri, Bucket=uri.bucket, Key=uri.key, Body=data)

    def delete(self, uri: S3Uri) -> None:
        self.call("delete_object", "s3:DeleteObject", uri, Bucket=uri.bucket, Key=uri.key)

    def ensure_bucket(self, bucket: str) -> None:
        """Create ``bucket`` unless it exists (the demo's own bucket on its own server)."""
        try:
            self.client.head_bucket(Bucket=bucket)
        except Exception as exc:  # noqa: BLE001 - only a missing bucket is created
            if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise translate_error(exc, "s3:ListBucket", f"s3://{bucket}") from exc
            self.call("create_bucket", "s3:CreateBucket", f"s3://{bucket}", Bucket=bucket)

    def __repr__(self) -> str:
        return f"S3Service({self.endpoint_url or 'AWS default'})"


def bounded_config(**changes: Any) -> Any:
    """A botocore ``Config`` with S3Options' bounded waits (connect and read timeouts, retries):
    for the other AWS clients rectrain builds (SageMaker, CloudWatch Logs), so that no AWS call
    waits longer than an S3 one."""
    from botocore.config import Config

    o = S3Options()
    return Config(connect_timeout=o.connect_timeout, read_timeout=o.read_timeout,
                  retries={"total_max_attempts": o.max_attempts, "mode": "standard"}, **changes)


def make_client(options: S3Options) -> Any:
    """A boto3 S3 client (called by :class:`S3Service` only).

    ``endpoint_url=None`` lets boto3 take the endpoint from ``AWS_ENDPOINT_URL_S3`` /
    ``AWS_ENDPOINT_URL`` or the profile's ``endpoint_url`` (and AWS S3 otherwise).
    Throttling (SlowDown, 503) and 5xx errors are retried with exponential backoff;
    ``adaptive`` also slows the client down when S3 throttles.
    """
    import boto3
    import botocore.exceptions
    from botocore.config import Config

    try:
        session = boto3.session.Session(profile_name=options.profile)
    except botocore.exceptions.ProfileNotFound as exc:
        raise StorageError(
            f"AWS profile '{options.profile}' is not configured.",
            "check the name with `aws configure list-profiles`, or leave out --profile "
            "to use AWS_* environment variables.",
        ) from exc
    region = options.region or session.region_name or DEFAULT_REGION
    config = Config(
        region_name=region,
        signature_version="s3v4",  # presigned URLs too (the default for them is SigV2)
        # rectrain sends its own SHA-256 with every upload and hashes every download itself:
        # botocore's default CRC32 on top would only cost CPU
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"total_max_attempts": options.max_attempts, "mode": options.retry_mode},
        connect_timeout=options.connect_timeout,
        read_timeout=options.read_timeout,
        max_pool_connections=options.max_pool_connections,
        tcp_keepalive=True,
    )
    _fast_timestamps(session)
    kwargs: Dict[str, Any] = {"config": config}
    if options.endpoint_url:
        kwargs["endpoint_url"] = options.endpoint_url
    if options.access_key and options.secret_key:
        kwargs.update(aws_access_key_id=options.access_key, aws_secret_access_key=options.secret_key)
    if options.verify is not None:
        kwargs["verify"] = options.verify
    try:
        return session.client("s3", **kwargs)
    except ValueError as exc:  # a malformed endpoint URL
        raise StorageError(
            f"S3 endpoint '{options.endpoint_url}' is not a valid URL: {exc}.",
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
