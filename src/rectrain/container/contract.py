"""What SageMaker hands the container, read as typed values (pure functions, no training):
``hyperparameters.json`` (every value a string), ``resourceconfig.json`` (hosts) and the
distributed launch arguments derived from them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from rectrain.errors import ConfigError
from rectrain.machine.instances import is_gpu_instance as _is_gpu_instance
from rectrain.paths import MLPaths
from rectrain.sagemaker.jobconfig import TrainingOptions, training_options_from_dict

DEFAULT_MASTER_PORT = 29500


def _unquote(value: Any) -> Any:
    """The SageMaker Python SDK JSON-encodes string hyperparameters (``'"abc"'``); boto3 users
    send plain strings. Accept both."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def parse_hyperparameters(raw: Dict[str, Any], source: str = "hyperparameters.json") -> TrainingOptions:
    """``hyperparameters.json`` -> :class:`TrainingOptions`. Unknown keys are refused (a typo
    would silently train with a default)."""
    data: Dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith("sagemaker_") or key.startswith("_"):
            continue  # the SDK's own keys
        value = _unquote(value)
        if key in ("image_shape", "overrides") and isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except ValueError as exc:
                    raise ConfigError(f"{source}: {key} = {value!r} is not a JSON list.",
                                      f'write {key} as JSON, e.g. "[3, 48, 320]".') from exc
            elif key == "overrides":
                value = [text] if text else []
        data[key] = value
    return training_options_from_dict(data, source)


@dataclass
class ResourceConfig:
    current_host: str = "algo-1"
    hosts: List[str] = field(default_factory=lambda: ["algo-1"])
    network_interface: Optional[str] = None
    instance_type: Optional[str] = None

    @property
    def sorted_hosts(self) -> List[str]:
        return sorted(self.hosts)

    @property
    def host_index(self) -> int:
        return self.sorted_hosts.index(self.current_host)

    @property
    def is_master(self) -> bool:
        return self.host_index == 0


def parse_resource_config(raw: Dict[str, Any], env: Optional[Dict[str, str]] = None) -> ResourceConfig:
    """``resourceconfig.json`` (absent locally: one host ``algo-1``)."""
    env = dict(os.environ if env is None else env)
    if not raw:
        return ResourceConfig(instance_type=env.get("SM_CURRENT_INSTANCE_TYPE"))
    hosts = [str(h) for h in raw.get("hosts") or []]
    current = str(raw.get("current_host") or (hosts[0] if hosts else "algo-1"))
    if not hosts:
        hosts = [current]
    if current not in hosts:
        raise ConfigError(f"resourceconfig.json: current_host {current!r} is not in hosts {hosts}.",
                          "this file is written by SageMaker; report it with the job name.")
    instance_type = raw.get("current_instance_type") or env.get("SM_CURRENT_INSTANCE_TYPE")
    return ResourceConfig(current, hosts, raw.get("network_interface_name"), instance_type)


def read_contract(paths: MLPaths):  # noqa: ANN201 - (TrainingOptions, ResourceConfig)
    return (parse_hyperparameters(paths.read_json(paths.hyperparameters), str(paths.hyperparameters)),
            parse_resource_config(paths.read_json(paths.resource_config)))


def is_gpu_instance(instance_type: Optional[str]) -> bool:
    """Whether the instance type has NVIDIA GPUs (by its family in
    :mod:`rectrain.machine.instances`, never by a prefix of its name)."""
    return _is_gpu_instance(instance_type)


@dataclass(frozen=True)
class DistributedPlan:
    """How this host joins the job: ``paddle.distributed.launch`` arguments.

    ``master`` is ``IP:PORT`` of the first host (sorted), never a host name: Paddle's
    ``HTTPMaster`` starts its rendezvous server only where that IP is the node's own, so with
    ``algo-1:PORT`` no host starts it and every host waits forever ("master not ready")."""

    nnodes: int
    node_rank: int
    master: Optional[str]  # IPv4:port of the first host (sorted), None on one host
    gpus: List[int]
    host_address: Optional[str] = None  # this host's IPv4 (POD_IP for the launcher)

    def launch_args(self) -> List[str]:
        """The ``python -m paddle.distributed.launch`` options (empty: plain single process);
        ``--gpus`` is the launcher's alias of ``--devices``."""
        args: List[str] = []
        if len(self.gpus) > 1 or self.nnodes > 1:
            if self.gpus:
                args += ["--gpus", ",".join(str(g) for g in self.gpus)]
            if self.nnodes > 1:
                args += ["--master", str(self.master), "--nnodes", str(self.nnodes),
                         "--rank", str(self.node_rank)]
        return args

    def launcher_env(self) -> Dict[str, str]:
        """``POD_IP``: the launcher's own address (``--host``), so the master node recognises
        itself even where ``gethostbyname(getfqdn())`` answers another address."""
        return {"POD_IP": self.host_address} if self.nnodes > 1 and self.host_address else {}


def _ipv4_literal(value: Optional[str]) -> bool:
    import ipaddress

    try:
        ipaddress.IPv4Address(value or "")
        return True
    except ValueError:
        return False


def distributed_plan(resource: ResourceConfig, gpu_count: int, port: int = DEFAULT_MASTER_PORT,
                     master_address: Optional[str] = None,
                     host_address: Optional[str] = None) -> DistributedPlan:
    """Every GPU of every host: the first host in sorted order is the master, the index of the
    current host in that order is its rank (SageMaker names hosts ``algo-1``, ``algo-2``...).
    Several hosts need ``master_address``, the first host's IPv4 address (resolved by
    :func:`rectrain.container.hosts.resolve_host`). Pure function."""
    hosts = resource.sorted_hosts
    gpus = list(range(max(0, gpu_count)))
    if len(hosts) == 1:
        return DistributedPlan(1, 0, None, gpus)
    if not _ipv4_literal(master_address):
        raise ValueError(f"several hosts need the IPv4 address of {hosts[0]} as the master, "
                         f"not {master_address!r}")
    return DistributedPlan(len(hosts), resource.host_index, f"{master_address}:{port}", gpus,
                           host_address if _ipv4_literal(host_address) else None)
