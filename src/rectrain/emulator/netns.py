"""Two SageMaker hosts on one machine: Linux network namespaces joined by a veth pair.

Each host (``algo-1``, ``algo-2``) gets its own network namespace with its own address in
198.18.0.0/15 (RFC 2544's benchmarking range: never routed on the internet, and these
addresses exist only inside the two namespaces), its own UTS host name (``unshare --uts``)
and a hosts file naming both hosts (``ip netns exec`` bind-mounts ``/etc/netns/NAME/hosts``
over ``/etc/hosts``). Traffic stays between the two namespaces (no route leaves them);
each namespace's loopback is its own.

Needs root and iproute2 (``ip``) and util-linux (``unshare``); :func:`unavailable_reason`
says why not where they are missing. Every namespace, veth and ``/etc/netns`` folder is
removed by :meth:`HostNetwork.close` (also used as a context manager), and namespaces left by
a process that died are removed at the next start.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

from rectrain.errors import EnvironmentProblem
from rectrain.logs import get_logger
from rectrain.machine.processes import pid_alive
from rectrain.outputs import remove_tree, write_text

log = get_logger("sagemaker.netns")
PREFIX = "rectrain-"
NETNS_ETC = Path("/etc/netns")
SUBNET = "198.18.{k}.{n}"


def hosts_file(addresses: Mapping[str, str]) -> str:
    """An ``/etc/hosts`` naming every host (for run-local's network namespaces)."""
    lines: List[str] = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{ip}\t{name}" for name, ip in sorted(addresses.items())]
    return "\n".join(lines) + "\n"


def unavailable_reason() -> Optional[str]:
    """Why network namespaces cannot be made here (None: they can)."""
    if os.name != "posix" or not Path("/proc/self/ns/net").exists():
        return "not Linux (no network namespaces)"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return "not root (ip netns needs CAP_SYS_ADMIN and CAP_NET_ADMIN; CI runs as root)"
    for tool in ("ip", "unshare"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (iproute2 / util-linux)"
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise EnvironmentProblem(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}",
                                 "run as root on Linux with iproute2, or run one host (--instance-count 1).")
    return proc


def _kill_namespace_processes(name: str) -> None:
    proc = _ip("netns", "pids", name, check=False)
    for pid in (int(p) for p in proc.stdout.split() if p.isdigit()):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def remove_namespace(name: str) -> None:
    """Kill what runs in namespace ``name``, delete it (its veth end goes with it) and its
    ``/etc/netns`` folder. Quiet when already gone."""
    if Path(f"/run/netns/{name}").exists():
        _kill_namespace_processes(name)
        _ip("netns", "del", name, check=False)
    remove_tree(NETNS_ETC / name, ignore_errors=True)


def remove_stale() -> List[str]:
    """Namespaces of ours whose creating process is gone (a run killed with SIGKILL)."""
    removed: List[str] = []
    run = Path("/run/netns")
    names = {p.name for p in run.iterdir()} if run.is_dir() else set()
    names |= {p.name for p in NETNS_ETC.iterdir()} if NETNS_ETC.is_dir() else set()
    for name in sorted(names):
        parts = name.split("-")
        if name.startswith(PREFIX) and len(parts) >= 3 and parts[1].isdigit() \
                and not pid_alive(int(parts[1])):
            remove_namespace(name)
            removed.append(name)
    return removed


class HostNetwork:
    """Namespaces for ``hosts`` (exactly two: one veth pair). Use as a context manager."""

    def __init__(self, hosts: Sequence[str], tag: Optional[str] = None) -> None:
        if len(hosts) != 2:
            raise EnvironmentProblem(f"run-local emulates 1 or 2 hosts, not {len(hosts)}.",
                                     "use --instance-count 1 or 2.")
        self.hosts = list(hosts)
        self.tag = tag or f"{os.getpid()}-{int(time.time() * 1000) % 100000}"
        k = (os.getpid() + int(time.time())) % 250 + 1
        self.names: Dict[str, str] = {h: f"{PREFIX}{self.tag}-{i + 1}" for i, h in enumerate(self.hosts)}
        short = self.tag.replace("-", "")[-9:]
        self.interfaces: Dict[str, str] = {h: f"rt{short}{'ab'[i]}" for i, h in enumerate(self.hosts)}
        self.addresses: Dict[str, str] = {h: SUBNET.format(k=k, n=i + 1) for i, h in enumerate(self.hosts)}
        self.created = False

    # -------------------------------------------------------------- set up / tear down
    def __enter__(self) -> HostNetwork:
        self.create()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create(self) -> None:
        reason = unavailable_reason()
        if reason:
            raise EnvironmentProblem(f"cannot emulate several hosts here: {reason}.",
                                     "run as root on Linux, or use --instance-count 1.")
        for name in remove_stale():
            log.warning("removed the network namespace %s left by a process that is gone", name)
        self.created = True  # from here on, close() cleans whatever exists
        try:
            a, b = self.hosts
            for host in self.hosts:
                _ip("netns", "add", self.names[host])
            _ip("link", "add", self.interfaces[a], "netns", self.names[a], "type", "veth",
                "peer", "name", self.interfaces[b], "netns", self.names[b])
            for host in self.hosts:
                ns, dev = self.names[host], self.interfaces[host]
                _ip("-n", ns, "addr", "add", f"{self.addresses[host]}/30", "dev", dev)
                _ip("-n", ns, "link", "set", dev, "up")
                _ip("-n", ns, "link", "set", "lo", "up")
                etc = NETNS_ETC / ns
                etc.mkdir(parents=True, exist_ok=True)
                write_text(etc / "hosts", hosts_file(self.addresses))
                write_text(etc / "hostname", host + "\n")
        except BaseException:
            self.close()
            raise
        log.info("hosts: %s", ", ".join(f"{h}={self.addresses[h]} ({self.interfaces[h]} in "
                                        f"{self.names[h]})" for h in self.hosts))

    def close(self) -> None:
        if not self.created:
            return
        for host in self.hosts:
            remove_namespace(self.names[host])
        self.created = False

    # -------------------------------------------------------------- running a host
    def command(self, host: str, argv: Sequence[str]) -> List[str]:
        """``argv`` run as ``host``: in its namespace, with its own UTS host name. The process
        that starts is ``argv`` itself (``exec`` all the way), so signals reach it."""
        return ["ip", "netns", "exec", self.names[host], "unshare", "--uts", "sh", "-c",
                'hostname "$0" && exec "$@"', host, *argv]

    def interface(self, host: str) -> str:
        return self.interfaces[host]
