"""Small-object GETs and PUTs at a fraction of botocore's CPU cost.

For a 5 KB image, a boto3 ``get_object``/``put_object`` spends most of its time in botocore's
machinery (endpoint rules, events, response parsing), not on the network: moving many small
files is CPU-bound in Python (docs/performance.md, "Per-file S3 transfers", has the profile).
Here each request is

- addressed as the client addresses it: the bucket's base URL comes from one presigned URL of
  the same client (endpoint, path or virtual-host style, region), the key is quoted as
  botocore quotes it;
- signed with SigV4 in the ``Authorization`` header (:class:`SigV4`; same credentials, region
  and service; refreshed credentials are picked up on every request). A PUT signs its payload's
  SHA-256 (``x-amz-content-sha256``), ``x-amz-checksum-sha256``, ``Content-MD5`` and the
  ``x-amz-meta-sha256`` metadata: AWS S3 refuses a body that does not match any of them, and
  SeaweedFS checks the last two (measured: it ignores ``x-amz-content-sha256``). After a 200, the
  ETag the server computed must be the MD5 we sent, else IntegrityError: no read-back needed;
- sent as HTTP/1.1 on one keep-alive socket per thread (``http.client`` parses headers with the
  email package and urllib3 re-parses long URLs character by character: each cost more than
  the request itself).

TLS as the client does it: its ``verify`` (``False``, a CA bundle path from ``verify=`` or
``AWS_CA_BUNDLE`` / ``ca_bundle``, or botocore's default bundle). The path turns itself off
after repeated network failures (the client, with its own retries and errors, takes over),
after repeated refusals, behind a proxy and without credentials; the service that owns the
client (:class:`rectrain.storage.service.S3Service`) does not make one at all when it is
switched off (``rectrain s3 push|pull --no-fastpath``, ``RECTRAIN_NO_FASTPATH=1``).

Only a 200 is handled here. Anything else (403, 404, a region redirect, repeated 5xx, a broken
connection, a proxy in the environment) goes back to the regular client, which gives the real
error with its code and its retries. Every byte is still checked by the caller.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import random
import socket
import ssl
import threading
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import quote, unquote_plus, urlsplit
from xml.etree import ElementTree

from rectrain.errors import IntegrityError

_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


class _ProtocolError(ValueError):
    """An answer that is not the plain HTTP/1.1 this path speaks (the client takes over)."""


_NET_ERRORS = (OSError, ValueError)  # _ProtocolError is a ValueError
NET_FAILURES_OFF = 3  # requests whose every attempt failed on the network: then off
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_MAX_HEAD = 64 * 1024  # response headers larger than this are not S3's: give up on the path
_MAX_BODY = 32 * 1024 * 1024  # a listing page (1,000 keys of up to 1,024 bytes, URL-encoded) fits


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


def quote_key(key: str) -> str:
    """The key as botocore puts it in the URL path (``percent_encode(key, safe='/~')``)."""
    return quote(key, safe="/~")


def host_port(scheme: str, netloc: str) -> Tuple[str, int]:
    """The host (IPv6 without brackets) and port of ``scheme://netloc``."""
    parts = urlsplit(f"{scheme}://{netloc}")
    return str(parts.hostname), parts.port or (443 if scheme == "https" else 80)


def canonical_query(params: Dict[str, str]) -> str:
    """The query string as SigV4 signs it (sorted, every name and value percent-encoded but
    ``-_.~``); sent as is, so the server reads back the string that was signed."""
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items()))


class SigV4:
    """AWS Signature Version 4 in the Authorization header, for service ``s3``. The canonical
    request is the one botocore's ``S3SigV4Auth`` builds (no double-encoded path, every header
    given signed); tests compare the two signatures. The day's signing key is cached."""

    def __init__(self, credentials: Any, region: str) -> None:
        self.credentials = credentials
        self.region = region
        self._key: Tuple[Tuple[str, str], bytes] = (("", ""), b"")

    def _signing_key(self, secret: str, day: str) -> bytes:
        cached, key = self._key
        if cached == (secret, day):
            return key
        key = ("AWS4" + secret).encode("utf-8")
        for part in (day, self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
        self._key = ((secret, day), key)
        return key

    def sign(self, method: str, host: str, path: str, headers: Dict[str, str], payload_sha256: str,
             now: Optional[float] = None, query: str = "") -> Dict[str, str]:
        """``headers`` (lower-case names) plus host, date, payload hash, token and Authorization;
        ``query``: the request's query string, already canonical (:func:`canonical_query`)."""
        frozen = self.credentials.get_frozen_credentials()
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        day = amz_date[:8]
        headers["host"] = host
        headers["x-amz-date"] = amz_date
        headers["x-amz-content-sha256"] = payload_sha256
        if frozen.token:
            headers["x-amz-security-token"] = frozen.token
        names = sorted(headers)
        signed = ";".join(names)
        lines = "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names)
        canonical = "\n".join((method, path, query, lines, signed, payload_sha256))
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(("AWS4-HMAC-SHA256", amz_date, scope,
                             hashlib.sha256(canonical.encode("utf-8")).hexdigest()))
        signature = hmac.new(self._signing_key(frozen.secret_key, day), to_sign.encode("utf-8"),
                             hashlib.sha256).hexdigest()
        headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={frozen.access_key}/{scope}, "
                                    f"SignedHeaders={signed}, Signature={signature}")
        return headers


class _Response:
    """Status, lower-case headers and the unread body of one response on a :class:`_Connection`."""

    def __init__(self, conn: _Connection, status: int, headers: Dict[str, str]) -> None:
        self.conn = conn
        self.status = status
        self.headers = headers
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self.length = -1 if self.chunked else int(headers.get("content-length", "0") or 0)
        self.will_close = headers.get("connection", "").lower() == "close"

    def chunks(self, size: int) -> Iterator[bytes]:
        """The body, at most ``size`` bytes at a time; the connection is reusable only after the
        last chunk (a body left half-read closes it)."""
        left = self.length
        complete = False
        try:
            while left > 0:
                chunk = self.conn.read_some(min(size, left))
                left -= len(chunk)
                yield chunk
            complete = True
        finally:
            if not complete or self.will_close:
                self.conn.close()

    def read(self, limit: int = _MAX_BODY) -> bytes:
        """The whole body (at most ``limit`` bytes, else _ProtocolError), sized or chunked."""
        if not self.chunked:
            if self.length > limit:
                raise _ProtocolError(f"a body of {self.length} bytes")
            return b"".join(self.chunks(1 << 20))
        parts, total, complete = [], 0, False
        try:
            while True:
                size = int(self.conn.read_line().split(b";", 1)[0].strip() or b"x", 16)
                if size == 0:
                    while self.conn.read_line():  # trailers, up to the empty line
                        pass
                    break
                total += size
                if total > limit:
                    raise _ProtocolError(f"a chunked body of more than {limit} bytes")
                parts.append(self.conn.read_exact(size))
                if self.conn.read_line():
                    raise _ProtocolError("a chunk longer than announced")
            complete = True
        finally:
            if not complete or self.will_close:
                self.conn.close()
        return b"".join(parts)


class _Connection:
    """One HTTP/1.1 keep-alive connection: a request out, a response's status and headers in."""

    def __init__(self, scheme: str, host: str, port: int, timeout: float,
                 context: Optional[ssl.SSLContext]) -> None:
        self.sock: Optional[socket.socket] = None
        self.buf = b""
        self.scheme, self.host, self.port, self.timeout, self.context = scheme, host, port, timeout, context

    def _open(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.scheme == "https":
            assert self.context is not None
            sock = self.context.wrap_socket(sock, server_hostname=self.host)
        self.buf = b""
        return sock

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf = b""

    def read_some(self, limit: int) -> bytes:
        if self.buf:
            data, self.buf = self.buf[:limit], self.buf[limit:]
            return data
        assert self.sock is not None
        data = self.sock.recv(min(limit, 1 << 20))
        if not data:
            raise _ProtocolError("the server closed the connection")
        return data

    def read_line(self) -> bytes:
        """One CRLF-ended line of a chunked body, without its CRLF."""
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line, self.buf = self.buf[:end], self.buf[end + 2:]
                return line
            if len(self.buf) > _MAX_HEAD:
                raise _ProtocolError("a line too long in a chunked body")
            assert self.sock is not None
            data = self.sock.recv(65536)
            if not data:
                raise _ProtocolError("the server closed the connection")
            self.buf += data

    def read_exact(self, size: int) -> bytes:
        parts = []
        while size > 0:
            data = self.read_some(size)
            parts.append(data)
            size -= len(data)
        return b"".join(parts)

    def request(self, head: bytes, body: Optional[bytes]) -> _Response:
        if self.sock is None:
            self.sock = self._open()
        if body and len(body) <= 256 * 1024:
            self.sock.sendall(head + body)
        else:
            self.sock.sendall(head)
            if body:
                self.sock.sendall(body)
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self.buf) > _MAX_HEAD:
                raise _ProtocolError("response headers too long")
            data = self.sock.recv(65536)
            if not data:
                raise _ProtocolError("the server closed the connection")
            self.buf += data
        status, headers = parse_head(self.buf[:end])
        self.buf = self.buf[end + 4:]
        return _Response(self, status, headers)


class FastPath:
    """Signed small-object requests on one keep-alive connection per thread."""

    def __init__(self, client: Any, maxsize: int = 16, attempts: int = 3) -> None:
        self.client = client
        self.attempts = attempts
        self.enabled = True
        self.local = threading.local()
        config = client.meta.config
        self.timeout = float(max(config.connect_timeout, config.read_timeout))  # S3Options' bounds
        self.ssl_context: Optional[ssl.SSLContext] = None
        self.refusals = 0  # 400/403 answers: after a few, this endpoint does not take our requests
        self.net_failures = 0  # requests that failed on the network every attempt
        self.bases: Dict[str, Optional[Tuple[str, str, str]]] = {}  # bucket -> (scheme, netloc, path)
        self._lock = threading.Lock()
        credentials = getattr(getattr(client, "_request_signer", None), "_credentials", None)
        self.signer = SigV4(credentials, str(client.meta.region_name)) if credentials else None
        if any(os.environ.get(name) for name in _PROXY_VARS) or getattr(config, "proxies", None):
            self.enabled = False
        if self.signer is None:
            self.enabled = False

    # ------------------------------------------------------------------ plumbing
    def base(self, bucket: str) -> Optional[Tuple[str, str, str]]:
        """(scheme, host[:port], path prefix) of the bucket's objects, as the client addresses them."""
        if bucket not in self.bases:
            base = None
            try:
                url = self.client.generate_presigned_url(
                    "get_object", Params={"Bucket": bucket, "Key": "K"}, ExpiresIn=60)
                parts = urlsplit(str(url))
                if parts.path.endswith("/K") and parts.scheme in ("http", "https"):
                    base = (parts.scheme, parts.netloc, parts.path[:-1])
            except Exception:  # noqa: BLE001 - the client will say what is wrong
                base = None
            with self._lock:
                self.bases[bucket] = base
        return self.bases[bucket]

    def _connection(self, scheme: str, netloc: str) -> _Connection:
        conn = getattr(self.local, "conn", None)
        if conn is not None and self.local.key == (scheme, netloc):
            return conn
        self._drop()
        context = None
        if scheme == "https":
            with self._lock:
                if self.ssl_context is None:
                    self.ssl_context = client_ssl_context(self.client)
                context = self.ssl_context
        conn = _Connection(scheme, *host_port(scheme, netloc), self.timeout, context)
        self.local.conn, self.local.key = conn, (scheme, netloc)
        return conn

    def _drop(self) -> None:
        conn = getattr(self.local, "conn", None)
        if conn is not None:
            conn.close()
        self.local.conn = None

    def _send(self, method: str, bucket: str, key: str, headers: Dict[str, str], payload_sha256: str,
              body: Optional[bytes] = None, query: str = "") -> Optional[_Response]:
        """The response (200 or not), or None when the network kept failing. ``key`` "": the
        bucket itself (``/bucket`` path style, ``/`` virtual-host style, as botocore sends it)."""
        base = self.base(bucket)
        if base is None or self.signer is None:
            return None
        scheme, netloc, prefix = base
        path = prefix + quote_key(key) if key else (prefix.rstrip("/") or "/")
        for attempt in range(self.attempts):
            head = self.head(method, netloc, path, headers, payload_sha256, query)
            conn = self._connection(scheme, netloc)
            reused = conn.sock is not None
            try:
                response = conn.request(head, body)
            except _NET_ERRORS:
                self._drop()
                if not (reused and attempt == 0):  # a stale keep-alive connection: retry at once
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

    def head(self, method: str, netloc: str, path: str, headers: Dict[str, str], payload_sha256: str,
             query: str = "") -> bytes:
        """A signed request's head (signed now: a retry is signed again)."""
        assert self.signer is not None
        signed = self.signer.sign(method, netloc, path, dict(headers), payload_sha256, query=query)
        return (f"{method} {path}{'?' + query if query else ''} HTTP/1.1\r\n"
                + "".join(f"{name}: {value}\r\n" for name, value in signed.items())
                + "\r\n").encode("utf-8")

    def _refused(self, status: int) -> None:
        if status in (400, 401, 403, 405, 501):
            self.refusals += 1
            if self.refusals >= 3:
                self.enabled = False  # the regular client does the rest

    def _finish(self, response: _Response) -> None:
        try:
            if response.length <= 1 << 20:
                response.read()
            else:
                response.conn.close()
        except _NET_ERRORS:
            self._drop()
        if response.will_close:
            self._drop()

    # ------------------------------------------------------------------ requests
    def get(self, bucket: str, key: str) -> Optional[Tuple[Dict[str, Any], Any]]:
        """(response fields as boto3 names them, body) for a 200, else None (use the client)."""
        if not self.enabled:
            return None
        response = self._send("GET", bucket, key, {}, EMPTY_SHA256)
        if response is None:
            return None
        if response.status != 200 or "content-length" not in response.headers:
            self._finish(response)
            self._refused(response.status)
            return None
        return response_fields(response.headers, response.length), _Body(response)

    def list_page(self, bucket: str, prefix: str, token: Optional[str] = None,
                  max_keys: int = 1000) -> Optional[Tuple[List[Tuple[str, int, str]], Optional[str]]]:
        """One page of ListObjectsV2 under ``prefix`` (after ``token``): its ``(key, size,
        etag)`` and the token of the next page (None: the last), or None (use the client: it
        gives the real error). Keys are URL-encoded by the server and decoded here, as
        botocore asks for and decodes them."""
        if not self.enabled:
            return None
        params = {"list-type": "2", "encoding-type": "url", "prefix": prefix, "max-keys": str(max_keys)}
        if token:
            params["continuation-token"] = token
        response = self._send("GET", bucket, "", {}, EMPTY_SHA256, query=canonical_query(params))
        if response is None:
            return None
        if response.status != 200:
            self._finish(response)
            self._refused(response.status)
            return None
        try:
            return parse_listing(response.read())
        except _NET_ERRORS:
            self._drop()
            return None

    def put(self, bucket: str, key: str, data: bytes, sha256_hex: str, sha256_b64: str,
            md5_hex: Optional[str] = None) -> bool:
        """PUT ``data`` with its checksums and sha256 metadata; True when stored and the server's
        ETag confirms the bytes, False to let the regular client do it (and report any error).
        IntegrityError when the server stored something else than was sent."""
        if not self.enabled:
            return False
        if md5_hex is None:
            md5_hex = hashlib.md5(data).hexdigest()  # noqa: S324 - Content-MD5, the ETag
        headers = put_headers(len(data), md5_hex, sha256_hex, sha256_b64)
        response = self._send("PUT", bucket, key, headers, sha256_hex, body=data)
        if response is None:
            return False
        self._finish(response)
        if response.status != 200:
            self._refused(response.status)
            return False
        check_put_answer(bucket, key, response.headers, md5_hex)
        return True


def put_headers(length: int, md5_hex: str, sha256_hex: str, sha256_b64: str) -> Dict[str, str]:
    """A small PUT's checksums (the server refuses a body that does not match them) and the
    ``sha256`` metadata later reads check against."""
    return {
        "content-length": str(length),
        "content-md5": base64.b64encode(bytes.fromhex(md5_hex)).decode("ascii"),
        "x-amz-checksum-sha256": sha256_b64,
        "x-amz-meta-sha256": sha256_hex,
    }


def check_put_answer(bucket: str, key: str, headers: Dict[str, str], md5_hex: str) -> None:
    """After a PUT's 200: the ETag the server computed must be the MD5 sent (unless KMS
    encryption or a multipart ETag makes it something else), else IntegrityError."""
    etag = headers.get("etag", "").strip('"').lower()
    encrypted = headers.get("x-amz-server-side-encryption", "") in ("aws:kms", "aws:kms:dsse")
    if len(etag) == 32 and "-" not in etag and not encrypted and etag != md5_hex:
        raise IntegrityError(
            f"s3://{bucket}/{key}: the server stored other bytes than were sent (ETag {etag}, "
            f"MD5 sent {md5_hex}).", "rerun the push; if it happens again, check the S3 endpoint "
            "or any proxy between this machine and it.")


def response_fields(headers: Dict[str, str], length: int) -> Dict[str, Any]:
    """A GET's answer as boto3 names its fields (what the download's checks read)."""
    return {
        "Metadata": {k[len("x-amz-meta-"):]: v for k, v in headers.items() if k.startswith("x-amz-meta-")},
        "ETag": headers.get("etag", ""),
        "ServerSideEncryption": headers.get("x-amz-server-side-encryption"),
        "SSECustomerAlgorithm": headers.get("x-amz-server-side-encryption-customer-algorithm"),
        "ContentLength": length,
    }


def parse_head(head: bytes) -> Tuple[int, Dict[str, str]]:
    """The status and lower-case headers of a response's head (without its blank line)."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise _ProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


class _Body:
    """The body with boto3's ``iter_chunks``. A body not read to the end closes its connection."""

    def __init__(self, response: _Response) -> None:
        self.response = response

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        return self.response.chunks(size)


def parse_listing(body: bytes) -> Tuple[List[Tuple[str, int, str]], Optional[str]]:
    """``(key, size, etag)`` of a ListObjectsV2 answer and its next token (None: the last
    page); _ProtocolError for anything else (the client takes over and says what it is)."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise _ProtocolError(f"not a listing: {exc}") from exc
    ns = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    if root.tag != ns + "ListBucketResult":
        raise _ProtocolError(f"not a listing: <{root.tag}>")
    decode = unquote_plus if root.findtext(ns + "EncodingType") == "url" else str
    found: List[Tuple[str, int, str]] = []
    for item in root.iterfind(ns + "Contents"):
        key = item.findtext(ns + "Key")
        if key is None:
            raise _ProtocolError("a listed object without a key")
        found.append((decode(key), int(item.findtext(ns + "Size") or 0),
                      (item.findtext(ns + "ETag") or "").strip('"')))
    token = root.findtext(ns + "NextContinuationToken") or None
    if (root.findtext(ns + "IsTruncated") or "").strip().lower() != "true":
        return found, None
    if token is None:
        raise _ProtocolError("a truncated listing without a continuation token")
    return found, token
