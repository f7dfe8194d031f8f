"""Many small S3 requests at once on non-blocking sockets, in one thread.

Moving thousands of 5 KB files through threads spends most of the CPU on the threads
themselves: each blocking send or receive hands the GIL to another thread (about 20 context
switches per file at 64 threads, measured: docs/performance.md). Here one thread keeps up to
``connections`` keep-alive HTTP/1.1 connections busy with signed requests (the fast path's
:class:`~rectrain.storage.fastpath.FastPath` signs and addresses them: a pull's GETs, a push's
PUTs) and hands each complete ``200`` to ``deliver``, which checks and records it, as an event
loop does.

Only the plain case is handled: ``http`` endpoints (a local S3 server; ``https`` stays on the
threaded fast path), a ``200`` with a ``Content-Length`` no larger than ``max_body``. At the
first anything else (a refusal, an error status, a cut or stuck connection) the loop stops
taking items and returns the ones in flight: the caller sends them, and the items not taken,
through the regular path, which retries and names the real error. Nothing is counted here.
"""

from __future__ import annotations

import selectors
import socket
import time
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Tuple, TypeVar

from rectrain.storage.fastpath import FastPath, host_port, parse_head, quote_key

T = TypeVar("T")
_RECV = 256 * 1024


class Request(NamedTuple):
    """One request of the loop: ``method`` on ``key`` with ``headers`` (lower-case names),
    ``body`` and the body's SHA-256 (hex) as SigV4 signs it."""

    method: str
    key: str
    headers: Dict[str, str]
    payload_sha256: str
    body: bytes = b""


class _Stop(Exception):
    """Not the plain case: the loop stops and the regular path takes over."""


class _Conn:
    """One connection: the item it fetches, the request left to send, what arrived."""

    __slots__ = ("sock", "item", "head", "out", "buf", "end", "length", "headers", "deadline", "used",
                 "resent", "close_after")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.item: Any = None
        self.head = b""
        self.out = b""
        self.buf = bytearray()
        self.end = -1  # where the body starts in buf, once the head is in
        self.length = 0
        self.headers: Dict[str, str] = {}
        self.deadline = 0.0
        self.used = False  # a response came on it already (a keep-alive the server may close)
        self.resent = False
        self.close_after = False


class RequestLoop:
    """Requests on the objects of one bucket on up to ``connections`` connections, one thread."""

    def __init__(self, fast: FastPath, bucket: str, connections: int, max_body: int) -> None:
        self.fast, self.bucket = fast, bucket
        self.connections, self.max_body = max(1, connections), max_body
        self.timeout = fast.timeout
        self.address: Optional[Tuple[Any, ...]] = None  # (family, address) of the server
        self.delivered = 0

    def usable(self) -> bool:
        """True for a plain-HTTP endpoint the fast path can sign for."""
        if not self.fast.enabled or self.fast.signer is None:
            return False
        base = self.fast.base(self.bucket)
        return base is not None and base[0] == "http"

    def run(self, items: Iterable[T], request: Callable[[T], Request],
            deliver: Callable[[T, Dict[str, str], bytes], None]) -> List[T]:
        """Send ``request(item)`` for each item; ``deliver(item, headers, body)`` for each plain
        ``200`` (lower-case headers). Returns the items taken but not delivered (none unless
        the loop stopped early, then it took no more from ``items``). An exception of
        ``request``, ``deliver`` or ``items`` stops everything and is raised."""
        base = self.fast.base(self.bucket)
        assert base is not None
        _, netloc, prefix = base
        source = iter(items)
        selector = selectors.DefaultSelector()
        busy: List[_Conn] = []
        idle: List[_Conn] = []
        more = True
        try:
            while True:
                try:
                    while more and len(busy) < self.connections:
                        conn = idle.pop() if idle else self._connect(netloc)
                        try:
                            item = next(source)
                        except StopIteration:
                            idle.append(conn)
                            more = False
                            break
                        busy.append(conn)
                        self._begin(selector, conn, item, netloc, prefix, request(item))
                    if not busy:
                        return []
                    self._turn(selector, busy, idle, deliver)
                except _Stop:
                    return [conn.item for conn in busy]
        finally:
            for conn in busy + idle:
                conn.sock.close()
            selector.close()

    # ------------------------------------------------------------------ one round
    def _turn(self, selector: selectors.BaseSelector, busy: List[_Conn], idle: List[_Conn],
              deliver: Callable[[Any, Dict[str, str], bytes], None]) -> None:
        for selected, events in selector.select(timeout=1.0):
            conn: _Conn = selected.data
            if events & selectors.EVENT_WRITE:
                self._send(selector, conn)
            elif self._receive(selector, conn):
                busy.remove(conn)
                selector.unregister(conn.sock)
                item, headers = conn.item, conn.headers
                body = bytes(conn.buf[conn.end:])
                conn.item = None
                if conn.close_after:
                    conn.sock.close()
                else:
                    idle.append(conn)
                deliver(item, headers, body)
                self.delivered += 1
        now = time.monotonic()
        if any(conn.deadline < now for conn in busy):
            raise _Stop("no answer in time")

    def _connect(self, netloc: str) -> _Conn:
        """A new connection: the first one blocking (it finds the address that answers), the
        others non-blocking to that address (connected once writable)."""
        if self.address is None:
            try:
                sock = socket.create_connection(host_port("http", netloc), timeout=self.timeout)
            except (OSError, ValueError) as exc:
                raise _Stop(f"cannot connect: {exc}") from exc
            self.address = (sock.family, sock.getpeername())
        else:
            sock = socket.socket(self.address[0], socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.connect_ex(self.address[1])  # EINPROGRESS: an error shows at the first send
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Conn(sock)

    def _begin(self, selector: selectors.BaseSelector, conn: _Conn, item: Any, netloc: str, prefix: str,
               request: Request) -> None:
        conn.item, conn.resent = item, False
        head = self.fast.head(request.method, netloc, prefix + quote_key(request.key), request.headers,
                              request.payload_sha256)
        conn.head = head + request.body
        self._start(selector, conn)

    def _start(self, selector: selectors.BaseSelector, conn: _Conn) -> None:
        conn.out, conn.buf, conn.end, conn.length = conn.head, bytearray(), -1, 0
        conn.deadline = time.monotonic() + self.timeout
        selector.register(conn.sock, selectors.EVENT_WRITE, conn)

    def _send(self, selector: selectors.BaseSelector, conn: _Conn) -> None:
        try:
            sent = conn.sock.send(conn.out)
        except BlockingIOError:
            return
        except OSError as exc:
            raise _Stop(str(exc)) from exc
        conn.out = conn.out[sent:]
        conn.deadline = time.monotonic() + self.timeout
        if not conn.out:
            selector.modify(conn.sock, selectors.EVENT_READ, conn)

    def _receive(self, selector: selectors.BaseSelector, conn: _Conn) -> bool:
        """True once the whole response is in; _Stop for anything but a plain 200."""
        try:
            data = conn.sock.recv(_RECV)
        except BlockingIOError:
            return False
        except OSError as exc:
            if not self._stale(selector, conn):
                raise _Stop(str(exc)) from exc
            return False
        if not data:
            if self._stale(selector, conn):
                return False
            raise _Stop("the server closed the connection")
        conn.buf += data
        conn.deadline = time.monotonic() + self.timeout
        if conn.end < 0:
            end = conn.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(conn.buf) > 64 * 1024:
                    raise _Stop("response headers too long")
                return False
            try:
                status, headers = parse_head(bytes(conn.buf[:end]))
                if status != 200 or "content-length" not in headers or "transfer-encoding" in headers:
                    raise _Stop(f"HTTP {status}")
                conn.length = int(headers["content-length"])
            except ValueError as exc:  # not HTTP/1.x (parse_head), not a number
                raise _Stop(str(exc)) from exc
            if conn.length > self.max_body:
                raise _Stop("a larger answer than expected")
            conn.end = end + 4
            conn.headers = headers
            conn.close_after = headers.get("connection", "").lower() == "close"
        have = len(conn.buf) - conn.end
        if have > conn.length:
            raise _Stop("more bytes than announced")
        if have < conn.length:
            return False
        conn.used = True
        return True

    def _stale(self, selector: selectors.BaseSelector, conn: _Conn) -> bool:
        """A kept-alive connection the server closed before answering: the request is sent
        again once, on a new connection (a GET, or a PUT of the same bytes under the same key,
        changes nothing when repeated)."""
        if not conn.used or conn.resent or conn.buf:
            return False
        selector.unregister(conn.sock)
        conn.sock.close()
        conn.sock = self._connect("").sock
        conn.used, conn.resent = False, True
        self._start(selector, conn)
        return True
