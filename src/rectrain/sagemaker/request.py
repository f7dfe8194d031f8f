"""The ``CreateTrainingJob`` request, as plain data, and its validation against botocore's own
service model for SageMaker (bundled with botocore: no network).

botocore's ``ParamValidator`` checks names, types, required members and minimums; SageMaker
also enforces maximum lengths, enums and patterns server-side, so :func:`validate_request`
checks those too from the same model, before anything is sent.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from typing import Any, Dict, List, Optional

from rectrain._version import __version__
from rectrain.errors import ConfigError
from rectrain.machine.instances import has_local_storage, runnable_problems
from rectrain.sagemaker.jobconfig import DEFAULT_LOCAL_CHECKPOINTS, JOB_NAME_RE, JobConfig
from rectrain.sagemaker.metric_definitions import metric_definitions
from rectrain.sagemaker.tracking import add_tracking
from rectrain.storage.s3 import S3Uri

ECR_IMAGE_RE = re.compile(r"^[0-9]{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?/[^:@\s]+([:@][^\s]+)?$")
ROLE_RE = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
PRETRAINED_CHANNEL = "pretrained"
TIMESTAMP_FORMAT = "%Y%m%d-%H%M%S"


def job_name(job: JobConfig, now: Optional[_dt.datetime] = None) -> str:
    """``<name>-<UTC timestamp>`` (63 characters at most), or ``name`` with ``exact_name``."""
    base = re.sub(r"[^a-zA-Z0-9-]+", "-", job.name).strip("-") or "rectrain"
    if job.exact_name:
        name = base
    else:
        stamp = (now or _dt.datetime.now(_dt.timezone.utc)).strftime(TIMESTAMP_FORMAT)
        name = f"{base[:63 - len(stamp) - 1].rstrip('-')}-{stamp}"
    if not JOB_NAME_RE.match(name):
        raise ConfigError(f"job name {name!r} is not valid: SageMaker wants 1-63 letters, digits and "
                          "hyphens, starting with a letter or digit.", "change name in the job config.")
    return name


def hyperparameters(job: JobConfig) -> Dict[str, str]:
    """The training options as SageMaker hyperparameters: every value a string (lists as JSON);
    options left unset are left out."""
    t = job.training
    out: Dict[str, str] = {}
    for key in ("preset", "base_config", "train_labels", "val_labels", "dict", "epochs", "lr",
                "batch_size", "max_text_length", "checkpoint_every_min"):
        value = getattr(t, key)
        if value is not None:
            out[key] = str(value)
    if t.image_shape:
        out["image_shape"] = json.dumps(list(t.image_shape))
    if t.pretrained:
        out["pretrained"] = (f"channel:{PRETRAINED_CHANNEL}" if t.pretrained.startswith("s3://")
                             else t.pretrained)
    if t.amp:
        out["amp"] = "true"
    if t.overrides:
        out["overrides"] = json.dumps(list(t.overrides), ensure_ascii=False)
    return out


def _channel(name: str, uri: str, input_mode: str) -> Dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri,
                                        "S3DataDistributionType": "FullyReplicated"}},
        "CompressionType": "None",
        "InputMode": input_mode,
    }


def _require(value: Optional[str], key: str, flag: str, example: str) -> str:
    if not value:
        raise ConfigError(f"the job has no {key}.", f"pass {flag} {example} or set {key}: in the job config.")
    return value


def checkpoint_uri(job: JobConfig, name: str) -> str:
    if job.checkpoint_s3:
        return job.checkpoint_s3
    return f"{str(job.output).rstrip('/')}/{name}/checkpoints"


def build_training_job_request(job: JobConfig, now: Optional[_dt.datetime] = None) -> Dict[str, Any]:
    """The keyword arguments of ``sagemaker_client.create_training_job(**request)``.
    Pure: no AWS call. Raises :class:`ConfigError` for a job that SageMaker would refuse."""
    role = _require(job.role, "role", "--role", "arn:aws:iam::123456789012:role/RectrainSageMaker")
    image = _require(job.image, "image", "--image",
                     "123456789012.dkr.ecr.us-east-1.amazonaws.com/rectrain:<tag>")
    train = _require(job.train, "train", "--train", "s3://bucket/datasets/train")
    output = _require(job.output, "output", "--output", "s3://bucket/rectrain/jobs")
    if not ROLE_RE.match(role):
        raise ConfigError(f"role {role!r} is not an IAM role ARN.",
                          "pass the role ARN: arn:aws:iam::<account>:role/<name> (see docs/sagemaker.md).")
    if not ECR_IMAGE_RE.match(image):
        raise ConfigError(f"image {image!r} is not an Amazon ECR image URI; SageMaker only pulls from ECR.",
                          "push the image with `rectrain sagemaker image --build --push` and pass the URI "
                          "it prints.")
    if not (job.training.preset or job.training.base_config):
        raise ConfigError("the job has no training.preset or training.base_config.",
                          "pass --preset th-ppocrv5-mobile (see `rectrain config presets`) or set "
                          "training.preset in the job config.")
    name = job_name(job, now)
    channels = [_channel("train", train, job.input_mode)]
    if job.val:
        channels.append(_channel("val", job.val, job.input_mode))
    for cname, uri in sorted(job.channels.items()):
        channels.append(_channel(cname, uri, job.input_mode))
    if job.training.pretrained and job.training.pretrained.startswith("s3://"):
        channels.append(_channel(PRETRAINED_CHANNEL, job.training.pretrained, job.input_mode))

    request: Dict[str, Any] = {
        "TrainingJobName": name,
        "RoleArn": role,
        "AlgorithmSpecification": {
            "TrainingImage": image,
            "TrainingInputMode": job.input_mode,
            "MetricDefinitions": metric_definitions(job.metrics),
            "EnableSageMakerMetricsTimeSeries": True,
        },
        "HyperParameters": hyperparameters(job),
        "InputDataConfig": channels,
        "OutputDataConfig": {"S3OutputPath": output},
        "ResourceConfig": {"InstanceType": job.instance_type, "InstanceCount": job.instance_count,
                           "VolumeSizeInGB": job.volume_gb},
        "StoppingCondition": {"MaxRuntimeInSeconds": job.max_run_seconds},
        "EnableManagedSpotTraining": bool(job.spot),
        "CheckpointConfig": {"S3Uri": checkpoint_uri(job, name), "LocalPath": DEFAULT_LOCAL_CHECKPOINTS},
        "Environment": {"PYTHONUNBUFFERED": "1", **job.environment},
        "Tags": [{"Key": "rectrain:version", "Value": __version__}]
        + [{"Key": k, "Value": v} for k, v in sorted(job.tags.items())],
    }
    if job.spot:
        request["StoppingCondition"]["MaxWaitTimeInSeconds"] = job.max_wait_seconds
    if job.keep_alive_seconds:
        request["ResourceConfig"]["KeepAlivePeriodInSeconds"] = job.keep_alive_seconds
    validate_request(request)  # an instance type SageMaker does not know is named here first
    problems = runnable_problems(job.instance_type, image)
    if problems:
        message, _, fix = problems[0].partition(" Fix: ")
        raise ConfigError(message, fix or "use another instance type.")
    if job.region:
        for problem in region_problems(image, job.region):
            message, _, fix = problem.partition(" Fix: ")
            raise ConfigError(message, fix)
    if job.kms_key:
        request["OutputDataConfig"]["KmsKeyId"] = job.kms_key
        # SageMaker refuses VolumeKmsKeyId on instance types with local NVMe storage (encrypted
        # by the instance's hardware module); only EBS-backed types take the key.
        if not has_local_storage(job.instance_type):
            request["ResourceConfig"]["VolumeKmsKeyId"] = job.kms_key
    if job.subnets:
        request["VpcConfig"] = {"Subnets": list(job.subnets), "SecurityGroupIds": list(job.security_groups)}
    if job.max_retries:
        request["RetryStrategy"] = {"MaximumRetryAttempts": job.max_retries}
    if job.network_isolation:
        request["EnableNetworkIsolation"] = True
    if job.instance_count > 1 and job.kms_key:
        request["EnableInterContainerTrafficEncryption"] = True
    add_tracking(request, job, name)
    validate_request(request)
    return request


# ------------------------------------------------------------------ regions
def image_region(image: str) -> Optional[str]:
    m = ECR_IMAGE_RE.match(image or "")
    return m.group(1) if m else None


def region_problems(image: str, region: str) -> List[str]:
    """SageMaker pulls the training image only from ECR in the job's own region."""
    where = image_region(image)
    if where and where != region:
        return [f"the image {image} is in ECR region {where}, the job in {region}; SageMaker pulls "
                f"training images only from the job's region. Fix: push the image to {region} "
                f"(`rectrain sagemaker image --region {region} --build --push`) or launch in {where}."]
    return []


def bucket_region(s3: Any, bucket: str) -> str:
    """The bucket's region (``GetBucketLocation``: empty means us-east-1, ``EU`` eu-west-1)."""
    location = s3.call("get_bucket_location", "s3:GetBucketLocation", f"s3://{bucket}",
                       Bucket=bucket).get("LocationConstraint") or "us-east-1"
    return {"EU": "eu-west-1"}.get(location, location)


def bucket_region_problems(request: Dict[str, Any], region: str, s3: Any) -> List[str]:
    """Every S3 bucket of the request (channels, output, checkpoints) must be in the job's
    region: SageMaker training jobs do not read or write buckets of another region."""
    uris = [c["DataSource"]["S3DataSource"]["S3Uri"] for c in request.get("InputDataConfig", [])]
    uris += [request["OutputDataConfig"]["S3OutputPath"], request["CheckpointConfig"]["S3Uri"]]
    problems: List[str] = []
    seen: Dict[str, str] = {}
    for uri in uris:
        bucket = S3Uri.parse(uri).bucket  # an address the request carries as text
        if bucket in seen:
            continue
        seen[bucket] = bucket_region(s3, bucket)
        if seen[bucket] != region:
            problems.append(f"bucket {bucket} ({uri}) is in {seen[bucket]}, the job in {region}. Fix: "
                            f"launch in {seen[bucket]} (--region) or copy the data to a bucket in {region}.")
    return problems


# ------------------------------------------------------------------ validation
def _input_shape(operation: str = "CreateTrainingJob"):  # noqa: ANN202 - botocore shape
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return model.operation_model(operation).input_shape


def _compile(pattern: str) -> Optional[re.Pattern]:
    try:
        return re.compile(pattern)
    except re.error:  # Java-only syntax such as \p{L}
        return None


def _walk(value: Any, shape: Any, path: str, problems: List[str]) -> None:
    meta = shape.metadata
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return
        for key, item in value.items():
            if key in shape.members:
                _walk(item, shape.members[key], f"{path}.{key}" if path else key, problems)
    elif kind == "list":
        if not isinstance(value, list):
            return
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: {len(value)} items, at most {meta['max']} allowed")
        for i, item in enumerate(value):
            _walk(item, shape.member, f"{path}[{i}]", problems)
    elif kind == "map":
        if not isinstance(value, dict):
            return
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: {len(value)} entries, at most {meta['max']} allowed")
        for key, item in value.items():
            _walk(key, shape.key, f"{path} key {key!r}", problems)
            _walk(item, shape.value, f"{path}[{key!r}]", problems)
    elif kind == "string":
        if not isinstance(value, str):
            return
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: {len(value)} characters, at most {meta['max']} allowed")
        if "enum" in meta and value not in meta["enum"]:
            close = [e for e in meta["enum"] if e.split(".")[:2] == value.split(".")[:2]][:6]
            problems.append(f"{path}: {value!r} is not one of SageMaker's values"
                            + (f" (similar: {', '.join(close)})" if close else ""))
        pattern = meta.get("pattern")
        if pattern:
            compiled = _compile(pattern)
            if compiled is not None and not compiled.fullmatch(value):
                problems.append(f"{path}: {value!r} does not match the pattern {pattern}")
    elif kind in ("integer", "long") and isinstance(value, int) and "max" in meta and value > meta["max"]:
        problems.append(f"{path}: {value} is over the maximum {meta['max']}")


def request_problems(request: Dict[str, Any], operation: str = "CreateTrainingJob") -> List[str]:
    """Every way ``request`` breaks the ``operation``'s input shape in botocore's SageMaker model:
    types, required members, and the lengths, enums and patterns SageMaker checks (empty: none)."""
    from botocore.validate import ParamValidator

    shape = _input_shape(operation)
    report = ParamValidator().validate(request, shape)
    problems: List[str] = []
    if report.has_errors():
        problems += [line.strip() for line in report.generate_report().splitlines() if line.strip()]
    _walk(request, shape, "", problems)
    return problems


def validate_request(request: Dict[str, Any]) -> None:
    """Raise :class:`ConfigError` listing every problem botocore's SageMaker model finds."""
    problems = request_problems(request)
    if problems:
        raise ConfigError("the CreateTrainingJob request is not valid: " + "; ".join(problems) + ".",
                          "fix the named fields in the job config or flags.")


def request_json(request: Dict[str, Any]) -> str:
    """The request exactly as sent, as JSON (what ``--dry-run`` prints)."""
    return json.dumps(request, indent=2, ensure_ascii=False, sort_keys=False)
