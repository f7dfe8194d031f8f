"""How the hosts of a multi-instance job find each other (pure data, plus one bounded wait).

- ``paddle.distributed.launch`` (``controllers/master.py``, ``HTTPMaster.lazy_init``) starts
  its rendezvous server only on the node whose own IP (``gethostbyname(getfqdn())``) or
  ``127.0.0.1`` equals the host part of ``--master``. A host *name* there (``algo-1:PORT``)
  matches no node: every host loops on "master not ready" until MaxRuntime. So ``--master``
  carries ``hosts[0]``'s IPv4 address, resolved on every host.
- SageMaker's ``algo-N`` names can appear in DNS minutes after the container starts (AWS's
  own training toolkit waits for them): :func:`resolve_host` retries, bounded, and then
  fails with the host named and the fix.
- ``network_interface_name`` of ``resourceconfig.json`` is what NCCL and Gloo must bind to
  (``NCCL_SOCKET_IFNAME`` / ``GLOO_SOCKET_IFNAME``); on EFA instance types NCCL goes over
  libfabric's EFA provider (the variables AWS's training toolkit sets).
"""

from __future__ import annotations

import socket
import time
from typing import Callable, Dict, Mapping, Optional

from rectrain.errors import EnvironmentProblem
from rectrain.logs import get_logger
from rectrain.machine.instances import has_efa, is_gpu_instance

log = get_logger("sagemaker.hosts")
RESOLVE_TIMEOUT_SECONDS = 600.0
RESOLVE_INTERVAL_SECONDS = 2.0
# What AWS's training toolkit exports for NCCL over EFA (sagemaker-training-toolkit,
# torch_distributed.py / smdataparallel.py): libfabric's EFA provider, RDMA reads/writes on the
# instance types that have them, fork safety for data-loader workers, the simple protocol
# (EFA delivers out of order).
EFA_ENV = {"FI_PROVIDER": "efa", "FI_EFA_USE_DEVICE_RDMA": "1", "FI_EFA_FORK_SAFE": "1",
           "RDMAV_FORK_SAFE": "1", "NCCL_PROTO": "simple"}


def _ipv4(host: str) -> str:
    infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    if not infos:
        raise socket.gaierror(f"no IPv4 address for {host}")
    return str(infos[0][4][0])


def resolve_host(host: str, *, timeout: Optional[float] = None,
                 interval: float = RESOLVE_INTERVAL_SECONDS,
                 resolver: Callable[[str], str] = _ipv4,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> str:
    """``host``'s IPv4 address, retrying every ``interval`` seconds for at most ``timeout``
    seconds. Raises :class:`EnvironmentProblem` naming the host (the entrypoint writes it to
    ``/opt/ml/output/failure``). ``timeout`` defaults to 600 s (``RECTRAIN_HOST_RESOLVE_TIMEOUT``,
    which the in-job program reads into its settings)."""
    if timeout is None:
        timeout = RESOLVE_TIMEOUT_SECONDS
    started = clock()
    attempts = 0
    last = ""
    while True:
        attempts += 1
        try:
            address = resolver(host)
            if attempts > 1:
                log.info("%s resolved to %s after %d attempt(s), %.0f s", host, address, attempts,
                         clock() - started)
            return address
        except (OSError, UnicodeError) as exc:
            last = str(exc) or type(exc).__name__
        waited = clock() - started
        if waited >= timeout:
            raise EnvironmentProblem(
                f"host {host!r} (the first host of the job, the distributed master) did not resolve "
                f"to an IPv4 address within {timeout:.0f} s ({attempts} attempts; last error: {last}).",
                "check the job's VPC DNS settings (enableDnsSupport/enableDnsHostnames) and security "
                "group (the hosts must reach each other on all TCP ports), then start the job again.")
        if attempts == 1 or attempts % 15 == 0:
            log.warning("waiting for %s to resolve (%s); retrying for up to %.0f s more", host, last,
                        timeout - waited)
        sleep(min(interval, max(0.0, timeout - waited)))


def launch_env(network_interface: Optional[str], instance_type: Optional[str], nnodes: int,
               current: Optional[Mapping[str, str]] = None, device: str = "gpu") -> Dict[str, str]:
    """Environment variables for the engine on this host (pure). Variables already set in
    ``current`` (the job's ``Environment``) are left as they are.

    On the CPU with several hosts, ``PADDLE_DISTRI_BACKEND=gloo``: Paddle's launcher sets it
    only when it detects no device, and ``CUDA_VISIBLE_DEVICES`` set at all (even empty, as
    the engine's CPU runs have it) makes it detect a GPU; ``init_parallel_env`` then keeps the
    backend ``auto``, creates no process group, and ``paddle.DataParallel`` fails."""
    current = current or {}
    env: Dict[str, str] = {}
    if nnodes > 1 and device == "cpu":
        env["PADDLE_DISTRI_BACKEND"] = "gloo"
    if network_interface:
        env["NCCL_SOCKET_IFNAME"] = network_interface
        env["GLOO_SOCKET_IFNAME"] = network_interface
    if nnodes > 1 and is_gpu_instance(instance_type) and has_efa(instance_type):
        env.update(EFA_ENV)
    return {k: v for k, v in env.items() if k not in current}
