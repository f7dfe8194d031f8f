"""A fault-injecting TCP proxy in front of an S3 endpoint (SeaweedFS on loopback), in threads.

Each client connection gets its own connection upstream. The client-to-server direction is
parsed as HTTP/1.1 requests (request line, headers, a body by Content-Length or chunked), so
faults fall on requests, as a real network and a real S3 place them:

- **cut**: close both sides (RST or FIN, drawn) once a random number of request bytes has
  passed, drawn from an exponential distribution of mean ``cut_mean_bytes`` and counted across
  all connections; a cut can fall in the headers or anywhere in a body.
  ``cut_response_mean_bytes`` does the same to the server's bytes (downloads).
- **error**: answer a request with a proper S3 XML error (``503 SlowDown`` or ``500
  InternalError``, ``error_rate`` / ``error_statuses``) without forwarding it, then close.
- **stall**: pause the response ``stall_s`` seconds after its first 0-128 bytes (in the status
  line or headers: every S3 response is longer) (``stall_rate``).
- **hang**: accept a request and never answer it (``hang_rate``) until the plan changes or the
  proxy stops: the client's read timeout decides.
- **slow**: limit both directions together to ``bandwidth`` bytes/s.
- **down**: the endpoint is gone: every new connection and every request is reset (RST).

``Expect: 100-continue`` is answered by the proxy itself, so the server always receives whole
requests and the parser never guesses whether a body follows (RFC 9110 lets a proxy do so).
The plan is switched at run time (``proxy.plan = FaultPlan(...)``, ``proxy.off()``);
``proxy.stats()`` counts what was done. The seed fixes the random draws; thread scheduling
still decides which request meets which draw, so a seed fixes the fault *plan*, not the
byte-exact sequence.
"""

from __future__ import annotations

import random
import select
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlparse

CHUNK = 16 * 1024
MAX_HEAD = 64 * 1024

ERRORS: Dict[int, Tuple[str, str, str]] = {
    503: ("Slow Down", "SlowDown", "Please reduce your request rate."),
    500: ("Internal Server Error", "InternalError", "We encountered an internal error. Please try again."),
}


@dataclass(frozen=True)
class FaultPlan:
    """What the proxy does to traffic; the default does nothing."""

    cut_mean_bytes: Optional[float] = None  # request bytes between cuts (exponential mean)
    cut_response_mean_bytes: Optional[float] = None  # response bytes between cuts
    error_rate: float = 0.0  # share of requests answered with an S3 error
    error_statuses: Tuple[int, ...] = (503,)  # drawn from ERRORS
    stall_rate: float = 0.0  # share of responses paused
    stall_s: Tuple[float, float] = (0.5, 2.0)  # pause length, uniform
    hang_rate: float = 0.0  # share of requests never answered
    bandwidth: Optional[float] = None  # bytes/s, both directions together
    down: bool = False  # reset every connection and request

    @property
    def active(self) -> bool:
        return bool(self.cut_mean_bytes or self.cut_response_mean_bytes or self.error_rate
                    or self.stall_rate or self.hang_rate or self.bandwidth or self.down)


OFF = FaultPlan()


class _Cut(Exception):
    """The connection is to be cut now."""


class _Reader:
    """Buffered reads from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def until(self, delim: bytes, limit: int = MAX_HEAD) -> bytes:
        while delim not in self.buf:
            if len(self.buf) > limit:
                raise EOFError  # not HTTP: give up on this connection
            self._fill()
        i = self.buf.index(delim) + len(delim)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def pieces(self, n: int) -> Iterator[bytes]:
        while n > 0:
            if not self.buf:
                self._fill()
            piece, self.buf = self.buf[:min(n, CHUNK)], self.buf[min(n, CHUNK):]
            n -= len(piece)
            yield piece


def _parse_head(head: bytes) -> Tuple[str, Dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method = lines[0].split(" ", 1)[0].upper()
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    return method, headers


def _without_expect(head: bytes) -> bytes:
    lines = head.split(b"\r\n")
    return b"\r\n".join(x for x in lines if not x.lower().startswith(b"expect:"))


def _body(reader: _Reader, headers: Dict[str, str]) -> Iterator[bytes]:
    """The request body's raw bytes (chunked framing passed through as is)."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            line = reader.until(b"\r\n")
            yield line
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    trailer = reader.until(b"\r\n")
                    yield trailer
                    if trailer == b"\r\n":
                        return
            yield from reader.pieces(size + 2)
    else:
        yield from reader.pieces(int(headers.get("content-length", "0") or 0))


def error_response(status: int, method: str) -> bytes:
    """A proper S3 error response (the XML body S3 sends; none for HEAD)."""
    reason, code, message = ERRORS[status]
    request_id = uuid.uuid4().hex[:16].upper()
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>{request_id}</RequestId>"
            f"<HostId>fault-proxy</HostId></Error>").encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
            f"Content-Length: {len(body)}\r\nx-amz-request-id: {request_id}\r\n"
            f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime())}\r\n"
            "Connection: close\r\n\r\n").encode()
    return head if method == "HEAD" else head + body


class _Conn:
    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.write_lock = threading.Lock()  # client writes: responses, 100 Continue, errors
        self.stall: Optional[Tuple[int, float]] = None  # (after bytes, seconds) for the next response
        self.closed = False

    def close(self, reset: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        for sock in (self.client, self.upstream):
            try:
                if reset:  # linger 0: close() sends RST; SHUT_RD wakes a thread blocked in recv
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    sock.shutdown(socket.SHUT_RD)
                else:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                sock.close()
            except OSError:
                pass


class FaultProxy:
    """``FaultProxy("http://127.0.0.1:8333", seed=7).start()``; ``.endpoint_url`` for clients."""

    def __init__(self, upstream: str, seed: int = 0, host: str = "127.0.0.1") -> None:
        parsed = urlparse(upstream if "://" in upstream else f"http://{upstream}")
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.host = host
        self.port: Optional[int] = None
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._plan = OFF
        self._until_cut = {"up": 0.0, "down": 0.0}
        self._bw_next = 0.0
        self._stats: Dict[str, int] = {}
        self._conns: List[_Conn] = []
        self._stop = threading.Event()
        self._listener: Optional[socket.socket] = None
        self._thread: Optional[threading.Thread] = None
        self.events: List[Tuple[float, str]] = []  # (monotonic time, what), for reports

    # control -------------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, 0))
        listener.listen(128)
        listener.settimeout(0.2)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def plan(self) -> FaultPlan:
        return self._plan

    @plan.setter
    def plan(self, plan: FaultPlan) -> None:
        with self._lock:
            self._plan = plan
            self._until_cut = {"up": self._draw_cut(plan.cut_mean_bytes),
                               "down": self._draw_cut(plan.cut_response_mean_bytes)}
            self._note(f"plan {plan}")

    def off(self) -> None:
        """Pass everything through from now on (pending hangs and stalls end)."""
        self.plan = OFF

    def stats(self) -> Dict[str, int]:
        with self._lock:
            return dict(self._stats)

    def stop(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            conn.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # internals -----------------------------------------------------------------------------
    def _draw_cut(self, mean: Optional[float]) -> float:
        return self._rng.expovariate(1.0 / mean) if mean else 0.0

    def _note(self, what: str) -> None:  # under self._lock
        self.events.append((time.monotonic(), what))
        del self.events[:-2000]

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._stats[key] = self._stats.get(key, 0) + n

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(None)
            threading.Thread(target=self._serve, args=(client,), name="fault-proxy-conn",
                             daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self._count("connections")
        if self._plan.down:
            self._count("resets")
            _Conn(client, socket.socket()).close(reset=True)
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
            upstream.settimeout(None)
        except OSError:
            self._count("upstream_refused")
            client.close()
            return
        conn = _Conn(client, upstream)
        with self._lock:
            self._conns.append(conn)
        down = threading.Thread(target=self._pump_down, args=(conn,), name="fault-proxy-down", daemon=True)
        down.start()
        try:
            self._pump_up(conn)
        except _Cut:
            pass
        except (OSError, EOFError, ValueError):
            conn.close()
        finally:
            down.join(timeout=0.5)
            if not down.is_alive():
                conn.close()
            with self._lock:
                if conn in self._conns:
                    self._conns.remove(conn)

    def _draw(self) -> Optional[Tuple]:
        with self._lock:
            plan, r = self._plan, self._rng.random()
            if r < plan.error_rate:
                return ("error", self._rng.choice(plan.error_statuses))
            r -= plan.error_rate
            if r < plan.hang_rate:
                return ("hang",)
            r -= plan.hang_rate
            if r < plan.stall_rate:
                return ("stall", self._rng.randint(0, 128), self._rng.uniform(*plan.stall_s))
            return None

    def _pump_up(self, conn: _Conn) -> None:
        reader = _Reader(conn.client)
        while not self._stop.is_set() and not conn.closed:
            try:
                head = reader.until(b"\r\n\r\n")
            except EOFError:
                conn.close()
                return
            method, headers = _parse_head(head)
            self._count("requests")
            conn.stall = None  # a stall belongs to one response
            if self._plan.down:
                self._count("resets")
                conn.close(reset=True)
                return
            fault = self._draw()
            expect = headers.get("expect", "").lower() == "100-continue"
            if fault and fault[0] == "error":
                if not expect:
                    for _ in _body(reader, headers):
                        pass
                self._count(f"error_{fault[1]}")
                with self._lock:
                    self._note(f"{fault[1]} for {method}")
                with conn.write_lock:
                    conn.client.sendall(error_response(fault[1], method))
                conn.close()
                return
            if fault and fault[0] == "hang":
                self._count("hangs")
                self._hang(conn)
                return
            if fault and fault[0] == "stall":
                self._count("stalls")
                conn.stall = (fault[1], fault[2])
            if expect:
                head = _without_expect(head)
                with conn.write_lock:
                    conn.client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            self._send(conn, head, "up")
            for piece in _body(reader, headers):
                self._send(conn, piece, "up")
            self._count("forwarded")

    def _pump_down(self, conn: _Conn) -> None:
        try:
            while not conn.closed:
                data = conn.upstream.recv(65536)
                if not data:
                    break
                stall = conn.stall
                if stall is not None:
                    after, seconds = stall
                    if len(data) > after:
                        self._send(conn, data[:after], "down")
                        data = data[after:]
                        conn.stall = None
                        self._pause(seconds)
                    else:
                        conn.stall = (after - len(data), seconds)
                for i in range(0, len(data), CHUNK):
                    self._send(conn, data[i:i + CHUNK], "down")
        except (_Cut, OSError):
            pass
        conn.close()

    def _send(self, conn: _Conn, data: bytes, direction: str) -> None:
        """Forward ``data`` (a cut may let only its first bytes through)."""
        sock = conn.upstream if direction == "up" else conn.client
        allowed = None
        with self._lock:
            mean = self._plan.cut_mean_bytes if direction == "up" else self._plan.cut_response_mean_bytes
            if mean:
                if len(data) < self._until_cut[direction]:
                    self._until_cut[direction] -= len(data)
                else:
                    allowed = int(self._until_cut[direction])
                    self._until_cut[direction] = self._draw_cut(mean)
                    reset = self._rng.random() < 0.5
                    self._note(f"cut {direction} ({'RST' if reset else 'FIN'})")
        if allowed is not None:
            if allowed:
                self._write(conn, sock, data[:allowed], direction)
            self._count("cuts" if direction == "up" else "cuts_response")
            conn.close(reset=reset)
            raise _Cut
        self._write(conn, sock, data, direction)

    def _write(self, conn: _Conn, sock: socket.socket, data: bytes, direction: str) -> None:
        bandwidth = self._plan.bandwidth
        if bandwidth:
            with self._lock:
                now = time.monotonic()
                self._bw_next = max(now, self._bw_next) + len(data) / bandwidth
                wait = self._bw_next - now  # the bytes leave once their time slot has passed
            if wait > 0:
                time.sleep(wait)
        if direction == "down":
            with conn.write_lock:
                sock.sendall(data)
        else:
            sock.sendall(data)
        self._count("bytes_" + direction, len(data))

    def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, ending early when the proxy stops or the plan goes off."""
        end = time.monotonic() + seconds
        while time.monotonic() < end and not self._stop.is_set() and self._plan.active:
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))

    def _hang(self, conn: _Conn) -> None:
        """Never answer: hold the connection until the client gives up, the plan goes off or
        the proxy stops; then close it."""
        while not self._stop.is_set() and self._plan.active and not conn.closed:
            readable, _, _ = select.select([conn.client], [], [], 0.1)
            if readable:
                try:
                    if not conn.client.recv(65536, socket.MSG_PEEK):
                        break  # the client closed
                except OSError:
                    break
                time.sleep(0.1)  # it sent more (a retry on this connection?): keep ignoring
        conn.close()
