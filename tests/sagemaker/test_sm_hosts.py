"""How the hosts of a multi-instance job find each other: the master as an IPv4 address
(resolved with a bounded retry, a failure file naming the host on timeout), the socket
interface for NCCL/Gloo and the EFA variables; and, in two real network namespaces, Paddle's
launcher hanging on a host-name master and training with an IP master."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rectrain.container.contract import parse_resource_config
from rectrain.container.entrypoint import launch_plan, run_entrypoint
from rectrain.container.hosts import EFA_ENV, launch_env, resolve_host
from rectrain.emulator.netns import hosts_file
from rectrain.errors import EnvironmentProblem
from rectrain.paths import MLPaths

RC = {"current_host": "algo-2", "hosts": ["algo-1", "algo-2"], "current_instance_type": "ml.p4d.24xlarge",
      "network_interface_name": "eth0"}


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_resolve_retries_until_the_name_appears():
    clock, calls = _Clock(), []

    def resolver(host):
        calls.append(clock.now)
        if clock.now < 30:
            raise socket.gaierror(-2, "Name or service not known")
        return "10.0.0.7"

    assert resolve_host("algo-1", timeout=120, interval=2, resolver=resolver, clock=clock,
                        sleep=clock.sleep) == "10.0.0.7"
    assert len(calls) == 16 and calls[-1] == 30


def test_resolve_gives_up_after_the_bound_naming_the_host():
    clock = _Clock()

    def never(host):
        raise socket.gaierror(-2, "Name or service not known")

    with pytest.raises(EnvironmentProblem, match="algo-1") as info:
        resolve_host("algo-1", timeout=60, interval=2, resolver=never, clock=clock, sleep=clock.sleep)
    assert clock.now == 60  # bounded, and not a second longer
    assert "DNS" in info.value.fix and "security group" in info.value.fix


def test_launch_plan_carries_ip_addresses_and_the_socket_interface():
    resource = parse_resource_config(RC, env={})
    names = {"algo-1": "10.2.0.11", "algo-2": "10.2.0.12"}
    plan, env = launch_plan(resource, 8, env={}, resolve=names.__getitem__)
    assert plan.master == "10.2.0.11:29500" and plan.node_rank == 1 and plan.nnodes == 2
    assert "algo-1" not in " ".join(plan.launch_args())
    assert env["POD_IP"] == "10.2.0.12"  # the launcher's own address
    assert env["NCCL_SOCKET_IFNAME"] == env["GLOO_SOCKET_IFNAME"] == "eth0"
    assert {k: env[k] for k in EFA_ENV} == EFA_ENV  # p4d: NCCL over EFA
    # the job's own Environment wins
    _, env = launch_plan(resource, 8, env={"NCCL_PROTO": "LL128", "NCCL_SOCKET_IFNAME": "ens5"},
                         resolve=names.__getitem__)
    assert "NCCL_PROTO" not in env and "NCCL_SOCKET_IFNAME" not in env and env["FI_PROVIDER"] == "efa"


def test_no_efa_variables_where_there_is_no_efa():
    assert launch_env("eth0", "ml.g5.xlarge", 2) == {"NCCL_SOCKET_IFNAME": "eth0",
                                                     "GLOO_SOCKET_IFNAME": "eth0"}
    assert "FI_PROVIDER" not in launch_env("eth0", "ml.p5.48xlarge", 1)  # one host: no inter-node NCCL
    assert launch_env("eth0", "ml.p5.48xlarge", 2)["FI_PROVIDER"] == "efa"
    assert "FI_PROVIDER" not in launch_env("eth0", "ml.c5n.18xlarge", 2)  # EFA, but no GPU: gloo
    assert launch_env(None, "ml.m5.xlarge", 2) == {}


def test_single_host_needs_no_resolution():
    one = parse_resource_config({"current_host": "algo-1", "hosts": ["algo-1"],
                                 "current_instance_type": "ml.g5.12xlarge"}, env={})

    def fail(host):
        raise AssertionError("resolved on one host")

    plan, env = launch_plan(one, 4, env={}, resolve=fail)
    assert plan.launch_args() == ["--gpus", "0,1,2,3"] and "POD_IP" not in env


def test_unresolvable_master_writes_the_failure_file(tmp_path, monkeypatch):
    monkeypatch.setenv("RECTRAIN_HOST_RESOLVE_TIMEOUT", "1")
    monkeypatch.setenv("RECTRAIN_DEVICE", "cpu")
    paths = MLPaths.resolve(str(tmp_path))
    paths.input_config.mkdir(parents=True)
    paths.hyperparameters.write_text(json.dumps({"preset": "crnn-mv3"}), encoding="utf-8")
    host = "algo-1.rectrain-test.invalid"  # .invalid never resolves (RFC 2606)
    paths.resource_config.write_text(json.dumps({"current_host": "zz-2", "hosts": [host, "zz-2"],
                                                 "current_instance_type": "ml.m5.xlarge"}), encoding="utf-8")
    paths.input_data_config.write_text("{}", encoding="utf-8")
    started = time.monotonic()
    assert run_entrypoint(str(tmp_path)) == 2
    assert time.monotonic() - started < 30
    text = paths.failure.read_text(encoding="utf-8")
    assert text.startswith("EnvironmentProblem:") and host in text and "Fix:" in text


# ------------------------------------------------------------------ real namespaces
ALLREDUCE = """
import paddle, paddle.distributed as dist
paddle.set_device("cpu")
dist.init_parallel_env()
x = paddle.to_tensor([float(dist.get_rank() + 1)])
dist.all_reduce(x)
print("RESULT", dist.get_rank(), dist.get_world_size(), float(x[0]), flush=True)
"""


def _launch_both(net, master: str, tmp: Path, timeout: float):
    tmp.mkdir(parents=True, exist_ok=True)
    script = tmp / "allreduce.py"
    script.write_text(ALLREDUCE, encoding="utf-8")
    procs, outs = [], []
    for rank, host in enumerate(net.hosts):
        out = tmp / f"{host}.out"
        argv = net.command(host, [sys.executable, "-m", "paddle.distributed.launch", "--master", master,
                                  "--nnodes", "2", "--rank", str(rank), "--log_dir", str(tmp / host),
                                  str(script)])
        procs.append(subprocess.Popen(argv, stdout=out.open("w"), stderr=subprocess.STDOUT))
        outs.append(out)
    deadline = time.monotonic() + timeout
    try:
        for proc in procs:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        finished = True
    except subprocess.TimeoutExpired:
        finished = False
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    logs = [out.read_text(errors="replace") for out in outs]
    workers = [(tmp / h / "workerlog.0").read_text(errors="replace") if (tmp / h / "workerlog.0").is_file()
               else "" for h in net.hosts]
    return finished, [p.returncode for p in procs], logs, workers


@pytest.mark.slow
def test_paddle_launcher_needs_an_ip_master(host_network, tmp_path):
    """Paddle's HTTPMaster starts its rendezvous server only where the --master host equals the
    node's own IP: a host name hangs both hosts; the IP trains (a gloo all-reduce gives 1+2)."""
    finished, _, logs, _ = _launch_both(host_network, "algo-1:29511", tmp_path / "name", 25)
    assert not finished and all("master not ready" in log for log in logs)
    finished, codes, logs, workers = _launch_both(
        host_network, f"{host_network.addresses['algo-1']}:29512", tmp_path / "ip", 240)
    assert finished and codes == [0, 0], logs
    assert "RESULT 0 2 3.0" in workers[0] and "RESULT 1 2 3.0" in workers[1]


def test_hosts_file_names_every_host():
    text = hosts_file({"algo-2": "198.18.1.2", "algo-1": "198.18.1.1"})
    assert "198.18.1.1\talgo-1\n198.18.1.2\talgo-2\n" in text and text.startswith("127.0.0.1\tlocalhost")


def test_namespaces_are_removed_on_failure_and_after_a_killed_run():
    from rectrain.emulator import netns

    reason = netns.unavailable_reason()
    if reason:
        pytest.skip(f"network namespaces unavailable: {reason}")

    def gone(net) -> bool:
        return not any(Path(f"/run/netns/{n}").exists() or (netns.NETNS_ETC / n).exists()
                       for n in net.names.values())

    net = netns.HostNetwork(["algo-1", "algo-2"])
    with pytest.raises(RuntimeError), net:
        assert (netns.NETNS_ETC / net.names["algo-2"] / "hosts").read_text().count("algo-") == 2
        raise RuntimeError("a failing run")
    assert gone(net)
    # a run killed with SIGKILL leaves its namespaces: the next start removes them (its pid is gone)
    proc = subprocess.Popen(["true"])
    proc.wait()  # a pid that no longer runs
    left = netns.HostNetwork(["algo-1", "algo-2"], tag=f"{proc.pid}-0")
    left.create()
    try:
        assert not gone(left)
        assert set(left.names.values()) <= set(netns.remove_stale())
        assert gone(left)
    finally:
        left.close()
