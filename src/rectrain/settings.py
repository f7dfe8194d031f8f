"""rectrain's ``RECTRAIN_*`` settings, read once, by an entry point, into one typed object.

The environment is read here and nowhere else (tests/test_architecture.py fails when a module
reads ``os.environ["RECTRAIN_..."]`` outside this one): the CLI (``cli/main.py``) and the
Python API's entry functions call :meth:`Settings.from_env` once and pass the values down as
arguments. A malformed value is refused with its name and the fix; an unknown ``RECTRAIN_*``
name is warned about with the closest valid one (``RECTRAIN_SEAL_AFTER`` -> did you mean
``RECTRAIN_SEAL_AFTER_S``?), since a typo would otherwise be silently ignored.

``TRAINING_JOB_NAME`` (SageMaker's own variable, set in every training container) is read here
too, so that the run knows which job it is without reading the environment deep inside.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from rectrain.errors import ConfigError
from rectrain.logs import get_logger

log = get_logger("settings")


def _text(raw: str, name: str) -> Optional[str]:  # noqa: ARG001
    return raw.strip() or None


def _seconds(raw: str, name: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds.",
                          f"set {name} to a number such as 60, or unset it for the default.")
    return value


def _flag(raw: str, name: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is neither on nor off.", f"set {name}=1 (on) or unset it.")


def _device(raw: str, name: str) -> Optional[str]:
    value = raw.strip().lower()
    if value in ("", "gpu", "cpu"):
        return value or None
    raise ConfigError(f"{name}={raw!r} is not a device.", f"set {name}=cpu or {name}=gpu, or unset it.")


# field -> (environment variable, parser, what it is for)
VARIABLES: Dict[str, Tuple[str, Callable[[str, str], Any], str]] = {
    "ml_root": ("RECTRAIN_ML_ROOT", _text, "the /opt/ml tree of the in-job program (default /opt/ml)"),
    "device": ("RECTRAIN_DEVICE", _device, "cpu forces CPU training in a job (run-local sets it)"),
    "scratch": ("RECTRAIN_SCRATCH", _text, "the in-job program's scratch folder"),
    "host_resolve_timeout_s": ("RECTRAIN_HOST_RESOLVE_TIMEOUT", _seconds,
                               "seconds to wait for algo-1 to resolve (default 600)"),
    "instance_type": ("RECTRAIN_INSTANCE_TYPE", _text, "the instance type, a tag of tracked runs"),
    "interrupt_upload_s": ("RECTRAIN_INTERRUPT_UPLOAD_S", _seconds,
                           "seconds an interrupted run may spend uploading (default 90)"),
    "seal_after_s": ("RECTRAIN_SEAL_AFTER_S", _seconds,
                     "seconds a snapshot's files must be old before its marker (default 60)"),
    "model_mirror": ("RECTRAIN_MODEL_MIRROR", _text, "a mirror of the official weights"),
    "no_fastpath": ("RECTRAIN_NO_FASTPATH", _flag, "1: every S3 request through boto3"),
    "s3_retry_s": ("RECTRAIN_S3_RETRY_S", _seconds,
                   "seconds an S3 operation retries transient failures (default 60)"),
    "lease_ttl_s": ("RECTRAIN_LEASE_TTL_S", _seconds,
                    "seconds after its last heartbeat a run's lease on its prefix expires (default 120)"),
    "lease_settle_s": ("RECTRAIN_LEASE_SETTLE_S", _seconds,
                       "seconds a run waits to read back its claim on a prefix (default 1)"),
    "s3_dir": ("RECTRAIN_S3_DIR", _text, "the data folder of `rectrain s3 serve`"),
    "weed": ("RECTRAIN_WEED", _text, "the SeaweedFS `weed` binary to run"),
    "tensorboard_dir": ("RECTRAIN_TENSORBOARD_DIR", _text, "where TensorBoard events go"),
    "image_cuda": ("RECTRAIN_IMAGE_CUDA", _text, "the image's CUDA build (set by the Dockerfile)"),
}
SAGEMAKER_JOB_VARIABLE = "TRAINING_JOB_NAME"


@dataclass(frozen=True)
class Settings:
    """Every ``RECTRAIN_*`` setting, typed, with its default (see :data:`VARIABLES`)."""

    ml_root: Optional[str] = None
    device: Optional[str] = None
    scratch: Optional[str] = None
    host_resolve_timeout_s: float = 600.0
    instance_type: Optional[str] = None
    interrupt_upload_s: float = 90.0
    seal_after_s: float = 60.0
    model_mirror: Optional[str] = None
    no_fastpath: bool = False
    s3_retry_s: float = 60.0
    lease_ttl_s: float = 120.0
    lease_settle_s: float = 1.0
    s3_dir: Optional[str] = None
    weed: Optional[str] = None
    tensorboard_dir: Optional[str] = None
    image_cuda: Optional[str] = None
    sagemaker_job: Optional[str] = None  # TRAINING_JOB_NAME, set by SageMaker

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None, *, warn: bool = True) -> Settings:
        """The settings of ``environ`` (default: this process's environment). Raises
        :class:`ConfigError` for a malformed value; logs a warning for an unknown name."""
        env = os.environ if environ is None else environ
        if warn:  # first: a typo can explain the error below
            for problem in unknown_names(env):
                log.warning("warning: %s", problem)
        values: Dict[str, Any] = {}
        for fieldname, (name, parse, _) in VARIABLES.items():
            raw = env.get(name)
            if raw is not None and raw.strip():
                values[fieldname] = parse(raw, name)
        job = (env.get(SAGEMAKER_JOB_VARIABLE) or "").strip()
        if job:
            values["sagemaker_job"] = job
        return cls(**values)


TEST_SUITE_PREFIX = "RECTRAIN_TEST_"  # the tests' own variables (tests/paddleocr3_env.py, ...)


def unknown_names(environ: Mapping[str, str]) -> list:
    """One line per ``RECTRAIN_*`` name that rectrain does not read, with the closest valid one.
    ``RECTRAIN_TEST_*`` belong to the test suite (README: ``RECTRAIN_TEST_CACHE``), not to rectrain."""
    known = [name for name, _, _ in VARIABLES.values()]
    tails = {name[len("RECTRAIN_"):]: name for name in known}
    out = []
    for name in sorted(k for k in environ if k.startswith("RECTRAIN_") and k not in known
                       and not k.startswith(TEST_SUITE_PREFIX)):
        close = difflib.get_close_matches(name[len("RECTRAIN_"):], list(tails), n=1, cutoff=0.6)
        hint = (f"did you mean {tails[close[0]]}?" if close
                else "known: " + ", ".join(sorted(known)) + ".")
        out.append(f"{name} is not a rectrain setting and is ignored. Fix: {hint}")
    return out
