"""Launch commands as pure data: each function returns ``(argv, env)`` and runs nothing
(as accelerate's ``utils/launch.py``)."""

from __future__ import annotations

import json
import os
import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from rectrain.engine.locate import Engine
from rectrain.redaction import has_credentials, secret_looking

Command = Tuple[List[str], Dict[str, str]]


def format_override(key: str, value: object) -> str:
    """``-o`` override in the engine's ``Section.key=value`` syntax.

    The engine parses each value with PyYAML's full loader (``yaml.load(v, Loader=yaml.Loader)``
    in ``tools/program.py``), which builds Python objects from tags such as
    ``!!python/object/apply``: a value is therefore always written as JSON (strings
    double-quoted and escaped, lists and dicts in flow style), which YAML reads back as the
    same plain data and in which no tag can appear. The engine splits on every ``=``, so a
    value holding one is refused."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", key):
        raise ValueError(f"not an engine config key: {key!r}")
    text = json.dumps(value, ensure_ascii=True, allow_nan=False, default=str)
    if "=" in text:
        raise ValueError(f"the engine cannot take {key}={value!r} as an override (it splits on "
                         "'=')")
    return f"{key}={text}"


# What the engine may inherit: the system, Python, the GPU stack, Paddle and its launcher,
# threading, proxies and CA bundles, SageMaker's SM_* facts. Not AWS keys, MLflow credentials,
# tokens: the engine reads local files only (issue 25).
ENGINE_ENV_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TERM", "TZ", "TMPDIR",
    "TEMP", "TMP", "PWD", "HOSTNAME", "LD_LIBRARY_PATH", "VIRTUAL_ENV", "CONDA_PREFIX",
    "NO_COLOR", "COLUMNS", "LINES", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "POD_IP", "TRAINING_JOB_NAME", "CURRENT_HOST"})
ENGINE_ENV_PREFIXES = ("LC_", "PYTHON", "CUDA", "CUDNN", "NVIDIA_", "NCCL_", "GLOO_", "PADDLE",
                       "FLAGS_", "GLOG_", "OMP_", "MKL_", "KMP_", "OPENBLAS_", "XDG_", "SM_",
                       "RECTRAIN_", "POLYGRAPHY_", "MASTER_", "TRAINER_", "DISTRIBUTED_",
                       "FI_", "RDMAV_", "MALLOC_")  # FI_/RDMAV_: NCCL over EFA


def engine_base_env(base: Mapping[str, str]) -> Dict[str, str]:
    """The allow-listed part of ``base``: names above, nothing that looks like a secret, no
    value carrying a credential (a proxy with ``user:password@``)."""
    return {k: v for k, v in base.items()
            if (k in ENGINE_ENV_NAMES or k.startswith(ENGINE_ENV_PREFIXES))
            and not secret_looking([k]) and not has_credentials(v)}


def engine_env(engine: Engine, base: Optional[Mapping[str, str]] = None,
               extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The engine's environment: the allow-listed part of ``base`` (this process's by
    default), the engine's path, ``extra`` (set by rectrain itself: kept as given)."""
    env = engine_base_env(os.environ if base is None else base)
    env["PYTHONUNBUFFERED"] = "1"  # stream the engine's log lines as they are written
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(engine.root)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    # OMP_NUM_THREADS is deliberately left as the user has it: setting it to the core count
    # made CPU training 33% slower on 2 cores (OpenMP spin-waits against the data-loader
    # workers; see docs/problem-log.md).
    if extra:
        env.update(extra)
    return env


def engine_command(engine: Engine, tool: str, config: str,
                   overrides: Optional[Mapping[str, object]] = None, *,
                   gpus: Optional[Sequence[int]] = None,
                   nnodes: int = 1, node_rank: int = 0, master: Optional[str] = None,
                   log_dir: Optional[str] = None,
                   base_env: Optional[Mapping[str, str]] = None,
                   extra_env: Optional[Mapping[str, str]] = None) -> Command:
    """The command that runs ``tools/<tool>.py -c config -o ...``.

    With more than one GPU, or more than one node, the engine runs under
    ``paddle.distributed.launch`` (the first host is the master, ``node_rank`` the host index).
    """
    script = str(engine.script(tool))
    argv: List[str] = [engine.python, "-u"]
    if (gpus and len(gpus) > 1) or nnodes > 1:
        argv += ["-m", "paddle.distributed.launch"]
        if gpus:
            argv += ["--gpus", ",".join(str(g) for g in gpus)]
        if nnodes > 1:
            if not master:
                raise ValueError("master host:port is required with several nodes")
            argv += ["--master", master, "--nnodes", str(nnodes), "--rank", str(node_rank)]
        if log_dir:
            argv += ["--log_dir", log_dir]
    argv += [script, "-c", config]
    if overrides:
        argv += ["-o"] + [format_override(k, v) for k, v in overrides.items()]
    extra = dict(extra_env or {})
    if gpus and len(gpus) == 1:
        extra.setdefault("CUDA_VISIBLE_DEVICES", str(gpus[0]))
    return argv, engine_env(engine, base_env, extra)
