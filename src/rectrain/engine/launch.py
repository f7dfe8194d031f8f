"""Launch commands as pure data: each function returns ``(argv, env)`` and runs nothing
(as accelerate's ``utils/launch.py``)."""

from __future__ import annotations

import json
import os
import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from rectrain.engine.locate import Engine

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


def engine_env(engine: Engine, base: Optional[Mapping[str, str]] = None,
               extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ if base is None else base)
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
