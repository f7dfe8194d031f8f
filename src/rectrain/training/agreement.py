"""Several hosts agree on the step they resume from before the engine starts.

Each host chooses its resume point from its own copy of the checkpoints (SageMaker restores
``/opt/ml/checkpoints`` on every host, in any order). If two hosts ever chose differently, the
engine's collectives would wait for each other until the job's MaxRuntime. So before the
engine starts, every host sends its step to the first host (``node_rank`` 0) over TCP, on the
port after the master's; the first host answers each with the verdict, and on a disagreement
every host stops with an error naming the steps. Waits are bounded (``timeout_s``).
"""

from __future__ import annotations

import json
import socket
import time
from typing import Dict, List, Optional, Tuple

from rectrain.errors import EnvironmentProblem, IntegrityError
from rectrain.logs import get_logger

log = get_logger("training")
PORT_OFFSET = 1  # the master's port + 1: free until the engine's launcher starts


class StepsDisagree(IntegrityError):
    """The hosts would resume from different steps (exit 2, before the engine starts)."""


def _address(master: str) -> Tuple[str, int]:
    host, _, port = master.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"master {master!r} is not host:port")
    return host, int(port) + PORT_OFFSET


def _verdict(steps: Dict[int, int]) -> str:
    if len(set(steps.values())) <= 1:
        return ""
    listing = ", ".join(f"host {rank} step {step}" for rank, step in sorted(steps.items()))
    return f"the hosts would resume from different steps ({listing})"


def _fail(verdict: str) -> StepsDisagree:
    return StepsDisagree(
        f"{verdict}; the engine was not started (its hosts would wait for each other forever).",
        "the hosts restored different checkpoints: check the checkpoint prefix with `rectrain ckpt "
        "list` (every host syncs the same one), then restart the job.")


def agree_on_resume_step(master: str, node_rank: int, nnodes: int, step: int,
                         timeout_s: float = 600.0) -> None:
    """Return once all ``nnodes`` hosts resume from ``step``; :class:`StepsDisagree` naming
    every host's step otherwise, :class:`EnvironmentProblem` when a host does not report in
    ``timeout_s``."""
    host, port = _address(master)
    if node_rank == 0:
        _collect(port, nnodes, step, timeout_s)
    else:
        _report(host, port, node_rank, step, timeout_s)
    log.info("the %d hosts agree: resuming from step %d", nnodes, step)


def _collect(port: int, nnodes: int, step: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    steps: Dict[int, int] = {0: step}
    conns: List[socket.socket] = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("", port))
        server.listen(nnodes)
        server.settimeout(1.0)
        try:
            while len(steps) < nnodes:
                if time.monotonic() > deadline:
                    missing = sorted(set(range(nnodes)) - set(steps))
                    raise EnvironmentProblem(
                        f"host(s) {missing} did not report their resume step within {timeout_s:.0f} s.",
                        "check that every host started (its log), then restart the job.")
                try:
                    conn, _ = server.accept()
                except socket.timeout:
                    continue
                conn.settimeout(max(1.0, deadline - time.monotonic()))
                message = _read_line(conn)
                if message is None:
                    conn.close()
                    continue
                steps[int(str(message["rank"]))] = int(str(message["step"]))
                conns.append(conn)
            verdict = _verdict(steps)
            for conn in conns:
                _send(conn, {"verdict": verdict, "steps": {str(k): v for k, v in steps.items()}})
        finally:
            for conn in conns:
                conn.close()
    if verdict:
        raise _fail(verdict)


def _report(host: str, port: int, rank: int, step: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn = socket.create_connection((host, port), timeout=5.0)
            break
        except OSError as exc:
            if time.monotonic() > deadline:
                raise EnvironmentProblem(f"the first host ({host}:{port}) did not take this host's "
                                         f"resume step within {timeout_s:.0f} s ({exc}).",
                                         "check that the first host started (its log), then restart "
                                         "the job.") from exc
            time.sleep(0.5)
    with conn:
        conn.settimeout(max(5.0, deadline - time.monotonic()))
        _send(conn, {"rank": rank, "step": step})
        answer = _read_line(conn)
    if answer is None:
        raise EnvironmentProblem(f"the first host ({host}:{port}) closed the connection before "
                                 "saying whether the hosts agree on the resume step.",
                                 "read the first host's log, then restart the job.")
    if answer.get("verdict"):
        raise _fail(str(answer["verdict"]))


def _send(conn: socket.socket, message: Dict[str, object]) -> None:
    conn.sendall(json.dumps(message).encode("utf-8") + b"\n")


def _read_line(conn: socket.socket) -> Optional[Dict[str, object]]:
    data = b""
    while not data.endswith(b"\n") and len(data) < 65536:
        try:
            chunk = conn.recv(4096)
        except OSError:  # reset, timed out: no answer
            return None
        if not chunk:
            return None
        data += chunk
    try:
        value = json.loads(data.decode("utf-8"))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
