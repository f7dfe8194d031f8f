"""The one door to S3: :class:`S3Service` owns the boto3 client and everything it is built from.

An entry point (the CLI, a Python API function, the demo, the in-job program) builds one
service from what the user gave (``--endpoint-url``, ``--profile``, ``--region``,
``--no-fastpath``) and passes it down; library functions take the service and ``S3Uri``
values, never ``(client, endpoint_url)`` pairs, and never build clients of their own
(tests/test_architecture.py fails when code outside ``rectrain.storage`` builds an S3 client).
So every S3 request rectrain makes has the same endpoint, credentials, TLS settings, timeouts
and retries, and a new command cannot forget one of them.

Retries live here too (:class:`RetryPolicy`): a transient failure (a connection reset or cut,
a timeout, a 5xx, ``SlowDown``, a download cut short) is retried with exponential back-off and
full jitter for at most ``retry_budget_s`` seconds per operation (``RECTRAIN_S3_RETRY_S``),
around boto3's own few quick retries. Every single request (:meth:`S3Service.call`), listing,
verified upload and verified download in :mod:`rectrain.storage.objects` runs through it, the
fast path included. Once the endpoint has failed every request for longer than the budget,
operations get one attempt each until one succeeds again: a persistent failure ends quickly
(and truthfully: the error names what failed) instead of waiting a budget per file.

The endpoint comes from the argument, else from the standard AWS configuration
(``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``, profiles), which boto3 reads itself; the same
code talks to AWS S3 and to the embedded SeaweedFS. Errors are translated at this boundary
(:mod:`rectrain.storage.aws_errors`), cause kept.
"""

from __future__ import annotations

import dataclasses
import email.utils
import random
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Dict, Optional, TypeVar, Union

from rectrain.errors import StorageError
from rectrain.logs import get_logger
from rectrain.storage.aws_errors import error_code, translate_error
from rectrain.storage.fastpath import FastPath
from rectrain.storage.parallel import TRANSFER_WORKERS
from rectrain.storage.s3 import S3Uri

log = get_logger("storage")
DEFAULT_REGION = "us-east-1"
RETRY_BUDGET_S = 60.0
T = TypeVar("T")

# S3 answers worth another try: throttling, the server's own failures, a request it timed out
TRANSIENT_CODES = frozenset({
    "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling",
    "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException", "BadGateway",
    "GatewayTimeout", "500", "502", "503", "504"})
# exception classes (by name: botocore, urllib3 and http.client need not be imported to test them)
TRANSIENT_TYPES = frozenset({
    "EndpointConnectionError", "ConnectionClosedError", "ReadTimeoutError", "ConnectTimeoutError",
    "ResponseStreamingError", "IncompleteReadError", "ProtocolError", "IncompleteRead",
    "RemoteDisconnected", "HTTPClientError", "NewConnectionError", "TransferCutShort"})


class TransferCutShort(StorageError):
    """A download whose connection ended before the size the server announced: the network,
    not the object (retried; never taken for a damaged object)."""


def is_transient(exc: BaseException) -> bool:
    """Whether another try may succeed: a connection reset or cut, a timeout, a 5xx or
    throttling answer, a body cut short (looked up through the cause chain of a translated
    error). A refusal (403, 404, a bad key), a checksum mismatch or a local disk error is not."""
    seen = 0
    cur: Optional[BaseException] = exc
    while cur is not None and seen < 6:
        if error_code(cur) in TRANSIENT_CODES:
            return True
        status = (getattr(cur, "response", None) or {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(status, int) and status >= 500:
            return True
        if any(t.__name__ in TRANSIENT_TYPES for t in type(cur).__mro__):
            return True
        if isinstance(cur, (ConnectionError, socket.timeout, TimeoutError)):
            return True  # reset, refused, broken pipe, aborted: the network (never ENOSPC & co.)
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return False


class RetryPolicy:
    """Retry transient failures (:func:`is_transient`) with exponential back-off and full
    jitter (``base_s`` doubling up to ``cap_s``) for at most ``budget_s`` seconds per
    operation: a retry is not started when the last attempt's duration would take the
    operation past the budget. Shared by every operation of one :class:`S3Service`: once an
    operation has given up after its whole budget, the others get one attempt each until one
    succeeds (a persistent failure ends fast, not a budget per file)."""

    def __init__(self, budget_s: float = RETRY_BUDGET_S, base_s: float = 0.25, cap_s: float = 8.0,
                 rng: Optional[random.Random] = None) -> None:
        self.budget_s = float(budget_s)
        self.base_s = base_s
        self.cap_s = cap_s
        self.retries = 0  # transient failures retried so far (for the logs and the tests)
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._down = False  # an operation gave up after its whole budget; no success since

    def run(self, fn: Callable[[], T], what: str = "") -> T:
        """``fn()``, tried again after transient failures within the budget; the last error
        is raised as ``fn`` raised it."""
        started = time.monotonic()
        attempt = 0
        while True:
            began = time.monotonic()
            try:
                result = fn()
            except Exception as exc:
                now = time.monotonic()
                if not is_transient(exc) or self.budget_s <= 0:
                    raise
                delay = self._rng.uniform(0, min(self.cap_s, self.base_s * 2 ** attempt))
                spent = now - started
                if self._down or spent + delay + (now - began) > self.budget_s:
                    with self._lock:
                        self._down = True
                    log.debug("%s: giving up after %d attempt(s) in %.1f s: %s", what or "S3",
                              attempt + 1, spent, exc)
                    raise
                attempt += 1
                with self._lock:
                    self.retries += 1
                log.debug("%s: transient failure (%s); retry %d in %.2f s", what or "S3",
                          type(exc).__name__, attempt, delay)
                time.sleep(delay)
                continue
            if self._down:
                with self._lock:
                    self._down = False
            return result


@dataclass(frozen=True)
class S3Options:
    """What an S3 client is built from: the one place for timeouts and retries (boto3's attempts,
    rectrain's :class:`RetryPolicy` budget, and :func:`bounded_config` for other AWS clients)."""

    endpoint_url: Optional[str] = None
    profile: Optional[str] = None
    region: Optional[str] = None
    access_key: Optional[str] = None  # explicit keys (the embedded server); else boto3's chain
    secret_key: Optional[str] = None
    verify: Union[None, bool, str] = None  # TLS: None = boto3's default (AWS_CA_BUNDLE ...)
    fastpath: bool = True  # small GETs/PUTs on presigned URLs (storage.fastpath)
    # Bounded waits, for every request (the client and the fast path): a server that accepts
    # the connection and never answers fails in about max_attempts x read_timeout (under a
    # minute), naming the endpoint; RetryPolicy starts no retry that would run past
    # retry_budget_s, so the whole operation stays within it. read_timeout is the longest
    # silence within one response, not a limit on a transfer's length. The other AWS clients
    # take the same bounds (bounded_config).
    max_attempts: int = 3  # boto3's own quick retries; RetryPolicy waits out longer trouble
    connect_timeout: float = 5
    read_timeout: float = 15
    max_pool_connections: int = 64
    retry_mode: str = "adaptive"
    retry_budget_s: float = RETRY_BUDGET_S  # rectrain's own retries of transient failures


class S3Service:
    """One S3 endpoint with one client (thread-safe: transfer threads share it), built on
    first use. ``with_options`` gives a service with other timeouts or retries (the permission
    preflight answers fast); :meth:`call` is the door for single requests."""

    def __init__(self, endpoint_url: Optional[str] = None, **options: Any) -> None:
        self.options = S3Options(endpoint_url=endpoint_url or None, **options)
        self.retry = RetryPolicy(self.options.retry_budget_s)
        self._client: Any = None
        self._lock = threading.Lock()

    @classmethod
    def for_workers(cls, endpoint_url: Optional[str] = None, workers: int = TRANSFER_WORKERS,
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
        """``client.<operation>(**params)``, transient failures retried (:class:`RetryPolicy`), a
        boto/OS error translated into a rectrain error naming the IAM ``action`` and the
        ``resource`` (cause kept)."""
        return self.retry.run(lambda: self._call_once(operation, action, resource, params),
                              f"{action} {resource}")

    def _call_once(self, operation: str, action: str, resource: Union[str, S3Uri],
                   params: Dict[str, Any]) -> Any:
        try:
            return getattr(self.client, operation)(**params)
        except Exception as exc:
            raise translate_error(exc, action, str(resource)) from exc

    # ---------------------------------------------------------------- single requests
    def read_bytes(self, uri: S3Uri) -> bytes:
        """The bytes of a small object (a marker, a pointer, metrics.jsonl), unverified (the
        request and the body's transfer retried together)."""
        def once() -> bytes:
            response = self._call_once("get_object", "s3:GetObject", uri,
                                       {"Bucket": uri.bucket, "Key": uri.key})
            try:
                return bytes(response["Body"].read())
            except Exception as exc:
                raise translate_error(exc, "s3:GetObject", str(uri)) from exc

        return self.retry.run(once, f"s3:GetObject {uri}")

    def put_bytes(self, uri: S3Uri, data: bytes) -> None:
        """A plain PUT (no checksum of rectrain's: what SageMaker's own agent sends)."""
        self.call("put_object", "s3:PutObject", uri, Bucket=uri.bucket, Key=uri.key, Body=data)

    def delete(self, uri: S3Uri) -> None:
        self.call("delete_object", "s3:DeleteObject", uri, Bucket=uri.bucket, Key=uri.key)

    def ensure_bucket(self, bucket: str) -> None:
        """Create ``bucket`` unless it exists (the demo's own bucket on its own server)."""
        try:
            self.retry.run(lambda: self.client.head_bucket(Bucket=bucket), f"s3:HeadBucket {bucket}")
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
    boto3 retries throttling (SlowDown, 503), 5xx errors and broken connections a few times at
    once (``adaptive`` also slows the client down when S3 throttles); longer trouble is waited
    out by :class:`RetryPolicy` around each operation.
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
