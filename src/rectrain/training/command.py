"""The engine's training command as pure data: ``(argv, env)``, nothing is run here."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from rectrain.engine import Engine, engine_command


def train_overrides(*, save_model_dir: str, device: str = "gpu",
                    resume_from: Optional[str] = None,
                    plan_overrides: Optional[Mapping[str, Any]] = None,
                    extra: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The ``-o`` overrides rectrain adds to the user's config."""
    ov: Dict[str, Any] = {"Global.save_model_dir": save_model_dir,
                          "Global.use_gpu": device == "gpu"}
    if resume_from:
        ov["Global.checkpoints"] = resume_from
    ov.update(plan_overrides or {})
    ov.update(extra or {})
    return ov


def build_train_command(engine: Engine, config: str, *, save_model_dir: str, device: str = "gpu",
                        gpus: Optional[Sequence[int]] = None, resume_from: Optional[str] = None,
                        plan_overrides: Optional[Mapping[str, Any]] = None,
                        extra_overrides: Optional[Mapping[str, Any]] = None,
                        nnodes: int = 1, node_rank: int = 0, master: Optional[str] = None,
                        log_dir: Optional[str] = None,
                        base_env: Optional[Mapping[str, str]] = None,
                        extra_env: Optional[Mapping[str, str]] = None) -> Tuple[List[str], Dict[str, str]]:
    """``python -u tools/train.py -c CONFIG -o ...`` (under paddle.distributed.launch for
    several GPUs or nodes). ``extra_env``: variables added to what the engine inherits (a host's
    NCCL and launcher settings)."""
    overrides = train_overrides(save_model_dir=save_model_dir, device=device,
                                resume_from=resume_from, plan_overrides=plan_overrides,
                                extra=extra_overrides)
    env: Dict[str, str] = dict(extra_env or {})
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    return engine_command(engine, "train", config, overrides,
                          gpus=list(gpus) if (gpus and device == "gpu") else None,
                          nnodes=nnodes, node_rank=node_rank, master=master, log_dir=log_dir,
                          base_env=base_env, extra_env=env)
