"""Small-object GETs and PUTs at a fraction of botocore's CPU cost.

For a 5 KB image, a boto3 ``get_object``/``put_object`` spends most of its time in botocore's
machinery (endpoint rules, events, response parsing), not on the network: moving many small
files is CPU-bound in Python. Here each request is signed by the same client
(``generate_presigned_url``, SigV4: same credentials, endpoint, addressing and region; for a
PUT the SHA-256 checksum and metadata headers are signed too, and the server checks the
checksum) and sent on a plain urllib3 pool.

TLS as the client does it: its ``verify`` (``False``, a CA bundle path from ``verify=`` or
``AWS_CA_BUNDLE`` / ``ca_bundle``, or botocore's default bundle). The path turns itself off
after repeated network failures (the client, with its own retries and errors, takes over),
after repeated refusals and behind a proxy; the service that owns the client
(:class:`rectrain.storage.service.S3Service`) does not make one at all when it is switched off
(``rectrain s3 push|pull --no-fastpath``, ``RECTRAIN_NO_FASTPATH=1``).

Only a 200 is handled here. Anything else (403, 404, a region redirect, repeated 5xx, a broken
connection, a proxy in the environment) goes back to the regular client, which gives the real
error with its code and its retries. Every byte is still checked by the caller.
"""

from __future__ import annotations

import http.client
import os
import random
import ssl
import threading
import time
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlsplit

_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
_NET_ERRORS = (http.client.HTTPException, OSError)
NET_FAILURES_OFF = 3  # requests whose every attempt failed on the network: then off


def client_ssl_context(client: Any) -> ssl.SSLContext:
    """The TLS settings the boto3 client itself uses (``verify``: False, a CA bundle file or
    folder, or botocore's default bundle)."""
    verify: Any = getattr(getattr(getattr(client, "_endpoint", None), "http_session", None),
                          "_verify", True)
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(verify, str) and verify:
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    from botocore.httpsession import get_cert_path

    return ssl.create_default_context(cafile=get_cert_path(True))


class FastPath:
    """One keep-alive ``http.client`` connection per thread (urllib3 re-parses the long signed URL
    character by character several times per request, which costs more than the request)."""

    def __init__(self, client: Any, maxsize: int = 16, attempts: int = 3) -> None:
        self.client = client
        self.attempts = attempts
        self.enabled = True
        self.local = threading.local()
        config = client.meta.config
        self.timeout = float(max(config.connect_timeout, config.read_timeout))  # S3Options' bounds
        self.ssl_context: Optional[ssl.SSLContext] = None
        self.refusals = 0  # 400/403 answers: after a few, this endpoint does not take our signed URLs
        self.net_failures = 0  # requests that failed on the network every attempt
        if any(os.environ.get(name) for name in _PROXY_VARS) or getattr(config, "proxies", None):
            self.enabled = False

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is not None and self.local.key == (scheme, netloc):
            return conn
        self._drop()
        if scheme == "https":
            if self.ssl_context is None:
                self.ssl_context = client_ssl_context(self.client)
            conn = http.client.HTTPSConnection(netloc, timeout=self.timeout, context=self.ssl_context)
        else:
            conn = http.client.HTTPConnection(netloc, timeout=self.timeout)
        self.local.conn, self.local.key = conn, (scheme, netloc)
        return conn

    def _drop(self) -> None:
        conn = getattr(self.local, "conn", None)
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass
        self.local.conn = None

    def _send(
        self, method: str, url: str, body: Optional[bytes] = None, headers: Optional[Dict[str, str]] = None
    ) -> Optional[http.client.HTTPResponse]:
        """The response (200 or not), or None when the network kept failing."""
        parts = urlsplit(url)
        target = parts.path + ("?" + parts.query if parts.query else "")
        for attempt in range(self.attempts):
            conn = self._connection(parts.scheme, parts.netloc)
            try:
                conn.request(method, target, body=body, headers=headers or {})
                response = conn.getresponse()
            except _NET_ERRORS:
                self._drop()
                time.sleep(0.05 * 2**attempt * (1 + random.random()))
                continue
            if response.status in (500, 502, 503, 504) and attempt + 1 < self.attempts:
                self._finish(response)
                time.sleep(0.05 * 2**attempt * (1 + random.random()))
                continue
            return response
        self.net_failures += 1
        if self.net_failures >= NET_FAILURES_OFF:
            self.enabled = False  # the network keeps failing here: the client's retries decide
        return None

    def _refused(self, status: int) -> None:
        if status in (400, 401, 403, 405, 501):
            self.refusals += 1
            if self.refusals >= 3:
                self.enabled = False  # the regular client does the rest

    def _finish(self, response: http.client.HTTPResponse) -> None:
        try:
            response.read()
        except _NET_ERRORS:
            self._drop()
        if response.will_close:
            self._drop()

    def _presign(self, operation: str, params: Dict[str, Any]) -> Optional[str]:
        try:
            return str(self.client.generate_presigned_url(operation, Params=params, ExpiresIn=900))
        except Exception:  # noqa: BLE001
            return None

    def get(self, bucket: str, key: str) -> Optional[Tuple[Dict[str, Any], Any]]:
        """(response fields as boto3 names them, body) for a 200, else None (use the client)."""
        if not self.enabled:
            return None
        url = self._presign("get_object", {"Bucket": bucket, "Key": key})
        response = self._send("GET", url) if url else None
        if response is None:
            return None
        if response.status != 200:
            self._finish(response)
            self._refused(response.status)
            return None
        headers = response.headers
        meta = {
            k[len("x-amz-meta-") :].lower(): v
            for k, v in headers.items()
            if k.lower().startswith("x-amz-meta-")
        }
        fields = {
            "Metadata": meta,
            "ETag": headers.get("ETag", ""),
            "ServerSideEncryption": headers.get("x-amz-server-side-encryption"),
            "SSECustomerAlgorithm": headers.get("x-amz-server-side-encryption-customer-algorithm"),
            "ContentLength": int(headers.get("Content-Length", "0") or 0),
        }
        return fields, _Body(self, response)

    def put(self, bucket: str, key: str, data: bytes, sha256_hex: str, sha256_b64: str) -> bool:
        """PUT ``data`` with its checksum and sha256 metadata; True when stored, False to let the
        regular client do it (and report any error)."""
        if not self.enabled:
            return False
        url = self._presign(
            "put_object",
            {"Bucket": bucket, "Key": key, "ChecksumSHA256": sha256_b64, "Metadata": {"sha256": sha256_hex}},
        )
        headers = {
            "x-amz-checksum-sha256": sha256_b64,
            "x-amz-meta-sha256": sha256_hex,
            "Content-Length": str(len(data)),
        }
        response = self._send("PUT", url, body=data, headers=headers) if url else None
        if response is None:
            return False
        self._finish(response)
        if response.status != 200:
            self._refused(response.status)
        return response.status == 200


class _Body:
    """The body with boto3's ``iter_chunks``. A body not read to the end closes its connection."""

    def __init__(self, owner: FastPath, response: http.client.HTTPResponse) -> None:
        self.owner = owner
        self.response = response

    def iter_chunks(self, size: int) -> Any:
        complete = False
        try:
            while True:
                chunk = self.response.read(size)
                if not chunk:
                    break
                yield chunk
            complete = True
        finally:
            if not complete or self.response.will_close:
                self.owner._drop()  # noqa: SLF001
