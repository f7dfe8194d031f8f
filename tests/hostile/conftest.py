"""Fixtures of the hostile cases: the tiny real world (a trained run and its exported model,
made once per session through the CLI) and an S3 endpoint that accepts connections and never
answers."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from tests.hostile import world as world_mod
from tests.hostile.harness import batch_of


@pytest.fixture(scope="session")
def hostile_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    why = world_mod.engine_missing()
    if why:
        pytest.skip(f"no PaddleOCR engine: {why}")
    return world_mod.build(tmp_path_factory.mktemp("hostile-world"))


@pytest.fixture(scope="module")
def case_results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                 hostile_world: Path) -> Dict[str, Optional[BaseException]]:
    """The module's CASES that this session selected, run a few at once (harness.batch_of);
    each test re-raises its own case's failure with ``raise_failure``."""
    return batch_of(request, tmp_path_factory, request.module.CASES)


class Blackhole:
    """A TCP server on 127.0.0.1 that accepts every connection, reads what it is sent and
    never answers (a load balancer in front of a dead S3, a firewall that swallows replies)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted = 0
        self._conns: List[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.setblocking(False)
            self._conns.append(conn)
            self.accepted += 1
            for c in list(self._conns):  # drain, never reply
                try:
                    c.recv(65536)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for c in self._conns:
            c.close()
        self.sock.close()


@pytest.fixture(scope="session")
def blackhole() -> Iterator[Blackhole]:
    server = Blackhole()
    try:
        yield server
    finally:
        server.close()
