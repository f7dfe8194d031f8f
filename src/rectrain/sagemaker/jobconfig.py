"""The job configuration: one typed object for everything a SageMaker training job needs.

It comes from ``--job-config job.yaml`` and/or command-line flags (flags win). Unknown keys
are refused with the closest known key, so a typo never silently drops a setting::

    name: thai-rec
    role: arn:aws:iam::123456789012:role/RectrainSageMaker
    image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/rectrain:0.1.0-cu118
    instance_type: ml.g5.xlarge
    train: s3://my-bucket/datasets/thai/train
    val: s3://my-bucket/datasets/thai/val
    output: s3://my-bucket/rectrain/jobs
    spot: true
    max_run: 12h
    training:
      preset: th-ppocrv5-mobile
      dict: dict.txt
      epochs: 50
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from rectrain.errors import ConfigError
from rectrain.logs import get_logger
from rectrain.machine.instances import parse_image_cuda
from rectrain.outputs import refuse_special
from rectrain.redaction import has_credentials, redact, secret_looking
from rectrain.sagemaker.metric_definitions import metric_definitions
from rectrain.yamlfile import read_yaml

log = get_logger("sagemaker")

DEFAULT_LOCAL_CHECKPOINTS = "/opt/ml/checkpoints"
DEFAULT_INSTANCE_TYPE = "ml.g5.xlarge"
JOB_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_DURATION_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any, field_name: str) -> int:
    """Seconds from ``3600``, ``"90m"``, ``"12h"``, ``"2d"``."""
    if isinstance(value, bool):
        raise ConfigError(f"{field_name}: expected a duration, got {value!r}.",
                          f"write {field_name}: 12h (or seconds: 43200).")
    if isinstance(value, (int, float)):
        seconds = int(value)
    else:
        match = _DURATION_RE.match(str(value))
        if not match:
            raise ConfigError(f"{field_name}: cannot read {value!r} as a duration.",
                              f"write {field_name}: 12h, 90m, 2d or a number of seconds.")
        seconds = int(float(match.group(1)) * _UNITS[match.group(2)])
    if seconds <= 0:
        raise ConfigError(f"{field_name}: {value!r} must be more than zero.",
                          f"write {field_name}: 12h, for example.")
    return seconds


@dataclass
class TrainingOptions:
    """What the container trains: passed to the job as hyperparameters (all strings) and read
    back by the entrypoint into ``create_recognition_training_config``."""

    preset: Optional[str] = None  # a rectrain preset name (rectrain.config.presets)
    base_config: Optional[str] = None  # or a config file path inside the ``config`` channel/image
    train_labels: Optional[str] = None  # label file inside the train channel (auto-detected)
    val_labels: Optional[str] = None  # label file inside the val channel (auto-detected)
    dict: Optional[str] = None  # dictionary file inside the train (or ``dict``) channel
    epochs: Optional[int] = None
    lr: Optional[float] = None
    batch_size: Optional[int] = None  # per GPU
    max_text_length: Optional[int] = None
    image_shape: Optional[List[int]] = None  # [C, H, W]
    pretrained: Optional[str] = None  # s3:// prefix of .pdparams (becomes the ``pretrained`` channel)
    amp: bool = False
    checkpoint_every_min: Optional[float] = None
    overrides: List[str] = field(default_factory=list)  # engine ``-o Section.key=value`` overrides


@dataclass
class JobConfig:
    """A SageMaker training job. See docs/sagemaker.md for every field."""

    name: str = "rectrain"  # job name prefix; a UTC timestamp is appended unless exact_name
    exact_name: bool = False
    role: Optional[str] = None  # IAM role ARN SageMaker assumes
    image: Optional[str] = None  # ECR image URI (rectrain sagemaker image)
    image_cuda: Optional[str] = None  # the image's CUDA build (11.8 or 12.9) when its tag does not say
    region: Optional[str] = None
    profile: Optional[str] = None
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1
    volume_gb: int = 50
    max_run: Any = "24h"
    spot: bool = False
    max_wait: Any = None  # spot only: total time including waiting for capacity (> max_run)
    train: Optional[str] = None  # s3:// prefix of the training set (packed or files)
    val: Optional[str] = None  # s3:// prefix of the validation set
    channels: Dict[str, str] = field(default_factory=dict)  # extra channels: name -> s3:// prefix
    input_mode: str = "File"
    checkpoint_s3: Optional[str] = None  # default: <output>/<job name>/checkpoints
    output: Optional[str] = None  # s3:// prefix for model.tar.gz
    subnets: List[str] = field(default_factory=list)
    security_groups: List[str] = field(default_factory=list)
    kms_key: Optional[str] = None  # output and volume encryption
    tags: Dict[str, str] = field(default_factory=dict)
    environment: Dict[str, str] = field(default_factory=dict)
    keep_alive: Any = None  # warm pool seconds (on-demand only)
    max_retries: Optional[int] = None  # RetryStrategy.MaximumRetryAttempts
    network_isolation: bool = False  # no network in the container (no MLflow, no pip): docs/sagemaker.md
    inter_container_encryption: Optional[bool] = None  # None: on with several instances
    metrics: List[Dict[str, str]] = field(default_factory=list)  # extra MetricDefinitions
    endpoint_url: Optional[str] = None  # S3 endpoint (run-local against a local S3 server)
    tensorboard: bool = True  # TensorBoardOutputConfig (docs/tracking.md)
    tensorboard_s3: Optional[str] = None  # default: <output>/<job name>/tensorboard
    mlflow_uri: Optional[str] = None  # MLFLOW_TRACKING_URI in the container
    mlflow_experiment: Optional[str] = None  # MLFLOW_EXPERIMENT_NAME in the container
    training: TrainingOptions = field(default_factory=TrainingOptions)

    # ---------------------------------------------------------------- derived values
    @property
    def max_run_seconds(self) -> int:
        return parse_duration(self.max_run, "max_run")

    @property
    def max_wait_seconds(self) -> Optional[int]:
        if not self.spot:
            return None
        if self.max_wait is None:
            return min(self.max_run_seconds * 2, self.max_run_seconds + 2 * 86400)
        return parse_duration(self.max_wait, "max_wait")

    @property
    def keep_alive_seconds(self) -> Optional[int]:
        if self.keep_alive in (None, 0, "0"):
            return None
        return parse_duration(self.keep_alive, "keep_alive")

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


_JOB_FIELDS = {f.name: f for f in dataclasses.fields(JobConfig)}
_TRAINING_FIELDS = {f.name: f for f in dataclasses.fields(TrainingOptions)}


def _unknown(key: str, known: Dict[str, Any], where: str, source: str) -> ConfigError:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return ConfigError(f"{source}: unknown key {where}{key!r}.",
                       f"{hint}Known keys: {', '.join(sorted(known))}.")


def _coerce(value: Any, f: dataclasses.Field, where: str, source: str) -> Any:
    """Check the YAML value against the field's declared type (the type is a string because of
    ``from __future__ import annotations``)."""
    kind = str(f.type)
    if value is None:
        return None
    bad = ConfigError(f"{source}: {where}{f.name} = {value!r} is not a valid {kind}.",
                      f"fix {where}{f.name} in the job config (see docs/sagemaker.md).")
    if kind in ("bool",):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
            return value.lower() in ("true", "yes")
        raise bad
    if kind in ("int", "Optional[int]"):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise bad
        try:
            return int(value)
        except ValueError as exc:
            raise bad from exc
    if kind in ("float", "Optional[float]"):
        if isinstance(value, bool):
            raise bad
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise bad from exc
    if kind in ("str", "Optional[str]"):
        if isinstance(value, (dict, list)):
            raise bad
        return str(value)
    if kind.startswith("List[str]"):
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list):
            raise bad
        return [str(v) for v in value]
    if kind.startswith("Optional[List[int]]"):
        if isinstance(value, str):
            value = [v for v in re.split(r"[,\s]+", value.strip("[]() ")) if v]
        if not isinstance(value, list):
            raise bad
        try:
            return [int(v) for v in value]
        except (TypeError, ValueError) as exc:
            raise bad from exc
    if kind.startswith("Dict[str, str]"):
        if not isinstance(value, dict):
            raise bad
        return {str(k): str(v) for k, v in value.items()}
    return value


def job_config_from_dict(data: Dict[str, Any], source: str = "job config") -> JobConfig:
    """Build a :class:`JobConfig` from a mapping (as read from YAML). Raises :class:`ConfigError`
    naming the key, with the closest known key as the fix."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings, got {type(data).__name__}.",
                          "write the job config as 'key: value' lines (see docs/sagemaker.md).")
    values: Dict[str, Any] = {}
    for key, value in data.items():
        key = str(key).replace("-", "_")
        if key not in _JOB_FIELDS:
            raise _unknown(key, _JOB_FIELDS, "", source)
        if key == "training":
            values[key] = training_options_from_dict(value or {}, source)
        else:
            coerced = _coerce(value, _JOB_FIELDS[key], "", source)
            if coerced is not None:
                values[key] = coerced
    job = JobConfig(**values)
    check_job_config(job, source)
    return job


def training_options_from_dict(data: Dict[str, Any], source: str = "job config") -> TrainingOptions:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: 'training' must be a mapping, got {type(data).__name__}.",
                          "indent the training options under 'training:'.")
    values: Dict[str, Any] = {}
    for key, value in data.items():
        key = str(key).replace("-", "_")
        if key not in _TRAINING_FIELDS:
            raise _unknown(key, _TRAINING_FIELDS, "training.", source)
        coerced = _coerce(value, _TRAINING_FIELDS[key], "training.", source)
        if coerced is not None:
            values[key] = coerced
    return TrainingOptions(**values)


def load_job_config(path: str) -> JobConfig:
    """Read ``job.yaml``. Raises :class:`ConfigError` for a missing file, bad YAML or bad keys."""
    p = Path(path)
    refuse_special(p, what="job config")
    if not p.is_file():
        raise ConfigError(f"job config {p} does not exist.",
                          "check the path, or start from the example in docs/sagemaker.md.")
    data = read_yaml(p, what="job config")
    return job_config_from_dict(data or {}, str(p))


def merge_overrides(job: JobConfig, overrides: Dict[str, Any]) -> JobConfig:
    """Apply command-line values (``None`` = not given) over ``job``; ``training.<key>`` keys
    go to the training options."""
    data = job.to_dict()
    for key, value in overrides.items():
        if value is None or value == [] or value == {}:
            continue
        if key.startswith("training."):
            data["training"][key.split(".", 1)[1]] = value
        else:
            data[key] = value
    on_demand = overrides.get("spot") is False and overrides.get("max_wait") is None
    if on_demand and data.get("max_wait") is not None:
        data.pop("max_wait")  # --on-demand over a spot job config: no waiting for spot capacity
    return job_config_from_dict(data, "command line")


def _s3(value: Optional[str], key: str, source: str) -> None:
    if value is not None and not re.match(r"^s3://[^/]+(/.*)?$", value):
        raise ConfigError(f"{source}: {key} = {value!r} is not an s3:// URI.",
                          f"write {key}: s3://bucket/prefix.")


# CreateTrainingJob's StoppingCondition: MaxRuntimeInSeconds 1 s .. 28 days (AWS documents the
# maximum; botocore's model only has min 1); a training job can last 30 days in all
MAX_RUNTIME_S = 28 * 86400
# ResourceConfig.KeepAlivePeriodInSeconds: 0 .. 21600 in botocore's model (a test checks it)
WARM_POOL_MAX_S = 21600
MAX_TOTAL_S = 30 * 86400
IMPLAUSIBLE_RUN_S = 600  # the instance alone takes minutes to start


def _show(seconds: int) -> str:
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= n and seconds % n == 0:
            return f"{seconds // n}{unit}"
    return f"{seconds} s"


def check_durations(job: JobConfig, source: str = "job config") -> None:
    """Durations within SageMaker's limits (a ConfigError before anything is sent), and a
    warning for one that cannot be meant (``max_run: 30`` is 30 seconds)."""
    run = job.max_run_seconds
    if run > MAX_RUNTIME_S:
        raise ConfigError(f"{source}: max_run {job.max_run!r} ({_show(run)}) is over SageMaker's "
                          f"limit of 28 days (MaxRuntimeInSeconds <= {MAX_RUNTIME_S}).",
                          "set max_run to 28d or less, and resume in a second job if training needs "
                          "longer (checkpoints in S3 carry over).")
    if run < IMPLAUSIBLE_RUN_S:
        log.warning("warning: %s: max_run %r is %s: SageMaker stops the job after that, before "
                    "training has started (starting an instance takes minutes). A number without "
                    "a unit is seconds: write e.g. %sh or %sm if that is what you meant.",
                    source, job.max_run, _show(run), run, run)
    if job.spot and job.max_wait is not None:
        wait = job.max_wait_seconds or 0
        if wait > MAX_TOTAL_S:
            raise ConfigError(f"{source}: max_wait {job.max_wait!r} ({_show(wait)}) is over the 30 "
                              "days a SageMaker training job can last in all.",
                              "set max_wait to at most 30d (and more than max_run).")


def check_secrets(job: JobConfig, source: str = "job config") -> None:
    """A credential in ``mlflow_uri`` would travel in the CreateTrainingJob request (shown to
    anyone who may DescribeTrainingJob) and into the job's logs: refused, never printed."""
    if job.mlflow_uri and has_credentials(job.mlflow_uri):
        raise ConfigError(
            f"{source}: mlflow_uri {redact(job.mlflow_uri)} carries a credential (user:password@ "
            "or a token in the query); it would be stored in the training job's description "
            "and its logs.",
            "remove the credential from the URI: use a SageMaker managed MLflow tracking server "
            "(its ARN; the job's role authenticates), or a server the job reaches without one "
            "(e.g. inside your VPC). See docs/security.md.")


def secret_warnings(job: JobConfig) -> List[str]:
    """Warnings for ``environment`` keys that look like secrets (they are stored in the job's
    description, readable by anyone who may DescribeTrainingJob)."""
    keys = secret_looking(job.environment)
    if not keys:
        return []
    return [f"environment: {', '.join(keys)} look(s) like secrets; the CreateTrainingJob request "
            "stores them in the job's description, which anyone allowed DescribeTrainingJob can "
            "read. Give the container a role-based way instead (docs/security.md)."]


def check_job_config(job: JobConfig, source: str = "job config") -> None:
    """Checks that need no AWS call. Required fields are checked later (by the request
    builder), so that a partial YAML can be completed by flags."""
    for key in ("train", "val", "checkpoint_s3", "output", "tensorboard_s3"):
        _s3(getattr(job, key), key, source)
    for name, uri in job.channels.items():
        _s3(uri, f"channels.{name}", source)
        if name in ("train", "val"):
            raise ConfigError(f"{source}: channels.{name} duplicates the '{name}' setting.",
                              f"set it with '{name}:' instead.")
    check_secrets(job, source)
    if job.training.pretrained and job.training.pretrained.startswith("s3://"):
        _s3(job.training.pretrained, "training.pretrained", source)
    if job.image_cuda is not None:
        parse_image_cuda(job.image_cuda, f"{source}: image_cuda")
    if job.instance_count < 1:
        raise ConfigError(f"{source}: instance_count must be 1 or more, got {job.instance_count}.",
                          "set instance_count: 1.")
    if job.volume_gb < 1:
        raise ConfigError(f"{source}: volume_gb must be 1 or more, got {job.volume_gb}.",
                          "set volume_gb: 50.")
    if job.input_mode not in ("File", "FastFile"):
        raise ConfigError(f"{source}: input_mode {job.input_mode!r} is not supported.",
                          "use File (packed datasets are unpacked to local disk) or FastFile.")
    run = job.max_run_seconds
    check_durations(job, source)
    if job.spot:
        wait = job.max_wait_seconds or 0
        if wait <= run:
            raise ConfigError(f"{source}: max_wait ({wait} s) must be more than max_run ({run} s) "
                              "with spot: it is the total time, waiting for capacity included.",
                              f"set max_wait to at least {run + 3600} s, or remove it "
                              "(default: 2 x max_run).")
        if job.keep_alive_seconds:
            raise ConfigError(f"{source}: keep_alive (warm pool) cannot be used with spot.",
                              "remove keep_alive, or set spot: false.")
    else:
        if job.max_wait is not None:
            raise ConfigError(f"{source}: max_wait is only used with spot: true.",
                              "remove max_wait, or set spot: true.")
    keep = job.keep_alive_seconds
    if keep is not None and keep > WARM_POOL_MAX_S:
        raise ConfigError(f"{source}: keep_alive {keep} s is over SageMaker's warm-pool limit of "
                          f"{WARM_POOL_MAX_S} s (ResourceConfig.KeepAlivePeriodInSeconds).",
                          "set keep_alive: (or --keep-alive) to 1h or less; the default quota is 3600 s, "
                          "more up to 6h needs a quota increase.")
    if bool(job.subnets) != bool(job.security_groups):
        raise ConfigError(f"{source}: a VPC needs both subnets and security_groups.",
                          "set both, or neither.")
    if job.training.preset and job.training.base_config:
        raise ConfigError(f"{source}: training.preset and training.base_config are both set.",
                          "keep one: a preset name or a base config file.")
    metric_definitions(job.metrics)
