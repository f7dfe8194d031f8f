"""Follow a SageMaker training job: status, logs of every host, metrics, cost, stop, download.

Logs come from CloudWatch Logs (group ``/aws/sagemaker/TrainingJobs``, one stream per host:
``<job>/algo-<n>-<epoch>``); ``filter_log_events`` with the job name as stream prefix returns
all hosts interleaved by time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from rectrain.errors import EXIT_ENGINE_FAILED, EXIT_INTERRUPTED, EXIT_OK, RectrainError, UserError
from rectrain.logs import get_logger
from rectrain.outputs import claim_output_dir
from rectrain.outputs.files import safe_extract
from rectrain.sagemaker import aws
from rectrain.sagemaker.jobconfig import JOB_NAME_RE
from rectrain.sagemaker.pricing import CostEstimate, estimate_cost
from rectrain.storage.objects import download_file
from rectrain.storage.pull import pull
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import S3Service

log = get_logger("sagemaker.follow")
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TERMINAL = ("Completed", "Failed", "Stopped")


@dataclass
class JobStatus:
    name: str
    status: str
    secondary_status: str
    history: List[Tuple[str, str, str]] = field(default_factory=list)  # (start, status, message)
    failure_reason: Optional[str] = None
    instance_type: str = ""
    instance_count: int = 1
    spot: bool = False
    training_seconds: Optional[int] = None
    billable_seconds: Optional[int] = None
    metrics: Dict[str, float] = field(default_factory=dict)  # FinalMetricDataList
    model_artifacts: Optional[str] = None
    checkpoint_s3: Optional[str] = None
    output_path: Optional[str] = None
    cost: Optional[CostEstimate] = None
    keep_alive_seconds: Optional[int] = None  # ResourceConfig.KeepAlivePeriodInSeconds
    warm_pool: Optional[Dict[str, Any]] = None  # WarmPoolStatus: Status, retained billable s, ReusedByJob

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @property
    def exit_code(self) -> int:
        if self.status == "Completed":
            return EXIT_OK
        if self.status == "Stopped":
            return EXIT_INTERRUPTED
        return EXIT_ENGINE_FAILED

    def as_dict(self) -> Dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "cost"}
        if self.cost is not None:
            data["cost_usd_estimate"] = self.cost.cost_usd
            data["spot_savings_pct"] = self.cost.spot_savings_pct
        return data


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if hasattr(value, "strftime") else str(value or "")


def describe_job(job_name: str, sagemaker_client: Any) -> JobStatus:
    """``describe_training_job`` as a :class:`JobStatus` (with a cost estimate)."""
    try:
        d = sagemaker_client.describe_training_job(TrainingJobName=job_name)
    except Exception as exc:  # noqa: BLE001 - turned into a user message
        raise aws.aws_error(exc, "sagemaker:DescribeTrainingJob", job_name) from exc
    resources = d.get("ResourceConfig", {})
    status = JobStatus(
        name=d["TrainingJobName"],
        status=d["TrainingJobStatus"],
        secondary_status=d.get("SecondaryStatus", ""),
        history=[(_when(t.get("StartTime")), t.get("Status", ""), t.get("StatusMessage", ""))
                 for t in d.get("SecondaryStatusTransitions", [])],
        failure_reason=d.get("FailureReason"),
        instance_type=resources.get("InstanceType", ""),
        instance_count=int(resources.get("InstanceCount", 1) or 1),
        spot=bool(d.get("EnableManagedSpotTraining")),
        training_seconds=d.get("TrainingTimeInSeconds"),
        billable_seconds=d.get("BillableTimeInSeconds"),
        metrics={m["MetricName"]: float(m["Value"]) for m in d.get("FinalMetricDataList", [])},
        model_artifacts=d.get("ModelArtifacts", {}).get("S3ModelArtifacts"),
        checkpoint_s3=d.get("CheckpointConfig", {}).get("S3Uri"),
        output_path=d.get("OutputDataConfig", {}).get("S3OutputPath"),
        keep_alive_seconds=resources.get("KeepAlivePeriodInSeconds"),
        warm_pool=dict(d["WarmPoolStatus"]) if d.get("WarmPoolStatus") else None,
    )
    if status.training_seconds is not None or status.billable_seconds is not None:
        status.cost = estimate_cost(status.instance_type, status.instance_count,
                                    status.training_seconds, status.billable_seconds, status.spot)
    return status


def format_status(s: JobStatus) -> str:
    lines = [f"{s.name}: {s.status} ({s.secondary_status})",
             f"  instances: {s.instance_count} x {s.instance_type}" + (" (spot)" if s.spot else "")]
    for start, st, message in s.history:
        lines.append(f"  {start}  {st:<12} {message}")
    if s.failure_reason:
        lines.append(f"  failure: {s.failure_reason}")
    for name, value in sorted(s.metrics.items()):
        lines.append(f"  {name} = {value:g}")
    if s.cost is not None:
        lines.append(f"  cost: {s.cost.describe()}")
    if s.model_artifacts:
        lines.append(f"  model: {s.model_artifacts}")
    if s.checkpoint_s3:
        lines.append(f"  checkpoints: {s.checkpoint_s3}")
    if s.keep_alive_seconds or s.warm_pool:
        lines.append("  " + describe_warm_pool(s))
    return "\n".join(lines)


WARM_POOL_STATES = {
    "InUse": "in use by this job",
    "Available": "available: the next job with the same role, instance type and count, volume size "
                 "and KMS key, VPC and network settings, itself started with --keep-alive, runs on "
                 "these instances without a new instance start",
    "Reused": "reused by {job}",
    "Terminated": "terminated (kept alive for its whole period and not reused, or stopped)",
}


def describe_warm_pool(s: JobStatus) -> str:
    """The warm pool line of ``sagemaker status``: its state (DescribeTrainingJob's
    ``WarmPoolStatus``), what matching job reuses it, and what keeping it has cost."""
    kept = f"kept {s.keep_alive_seconds} s after the job" if s.keep_alive_seconds else "no keep-alive"
    if not s.warm_pool:
        return (f"warm pool: {kept}; none yet (SageMaker keeps the instances when the job ends, "
                "unless it fails for a reason on SageMaker's side)")
    state = str(s.warm_pool.get("Status", "?"))
    text = WARM_POOL_STATES.get(state, state).format(job=s.warm_pool.get("ReusedByJob") or "another job")
    line = f"warm pool: {state} ({kept}): {text}"
    retained = s.warm_pool.get("ResourceRetainedBillableTimeInSeconds")
    if retained is not None:
        cost = estimate_cost(s.instance_type, s.instance_count, int(retained), int(retained), False)
        line += (f"; billed while kept: {cost.describe()}" if retained else "; nothing billed for it yet")
    return line


@dataclass
class LogEvent:
    stream: str
    timestamp: int  # ms since the epoch
    message: str

    @property
    def host(self) -> str:
        tail = self.stream.split("/", 1)[-1]
        return tail.rsplit("-", 1)[0] if tail.count("-") >= 2 else tail


def iter_log_events(job_name: str, logs_client: Any, *, start_ms: Optional[int] = None,
                    seen: Optional[Dict[Any, int]] = None) -> Iterator[LogEvent]:
    """Every log event of every host of the job from ``start_ms`` on, oldest first (one pass).
    ``seen`` (event id -> timestamp) skips events already shown."""
    seen = {} if seen is None else seen
    kwargs: Dict[str, Any] = {"logGroupName": LOG_GROUP, "logStreamNamePrefix": f"{job_name}/",
                              "interleaved": True}
    if start_ms is not None:
        kwargs["startTime"] = start_ms
    while True:
        try:
            resp = logs_client.filter_log_events(**kwargs)
        except Exception as exc:  # noqa: BLE001
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":  # no log group yet: the job has not started
                return
            raise aws.aws_error(exc, "logs:FilterLogEvents", f"{LOG_GROUP}/{job_name}") from exc
        for event in resp.get("events", []):
            key = event.get("eventId") or (event.get("logStreamName"), event.get("timestamp"),
                                            event.get("message"))
            if key in seen:
                continue
            seen[key] = int(event.get("timestamp", 0))
            yield LogEvent(event.get("logStreamName", ""), int(event.get("timestamp", 0)),
                           event.get("message", ""))
        token = resp.get("nextToken")
        if not token:
            return
        kwargs["nextToken"] = token


def follow_job(job_name: str, *, sagemaker_client: Any = None, logs_client: Any = None,
               follow: bool = True, poll_seconds: float = 10.0, region: Optional[str] = None,
               profile: Optional[str] = None, on_line: Optional[Callable[[LogEvent], None]] = None,
               on_status: Optional[Callable[[JobStatus], None]] = None,
               sleep: Callable[[float], None] = time.sleep) -> JobStatus:
    """Print (via ``on_line``) the logs of every host and (via ``on_status``) each status change
    until the job ends (``follow``) or once. Returns the last :class:`JobStatus`; its
    ``exit_code`` is 0 (Completed), 4 (Failed) or 75 (Stopped)."""
    sm = sagemaker_client or aws.client("sagemaker", region, profile)
    logs = logs_client or aws.client("logs", region, profile)
    show_line = on_line or (lambda e: print(f"[{e.host}] {e.message}", flush=True))
    show_status = on_status or (lambda s: log.info("%s: %s (%s)", s.name, s.status, s.secondary_status))
    seen: Dict[Any, int] = {}
    last_ms: Optional[int] = None
    last_state: Optional[Tuple[str, str]] = None
    while True:
        status = describe_job(job_name, sm)
        state = (status.status, status.secondary_status)
        if state != last_state:
            show_status(status)
            last_state = state
        for event in iter_log_events(job_name, logs, start_ms=last_ms, seen=seen):
            show_line(event)
            last_ms = event.timestamp if last_ms is None else max(last_ms, event.timestamp)
        if last_ms is not None:  # only events at the last timestamp can come back
            seen = {k: ts for k, ts in seen.items() if ts >= last_ms}
        if status.done or not follow:
            if status.done:
                # the last lines can land after the status flips
                for event in iter_log_events(job_name, logs, start_ms=last_ms, seen=seen):
                    show_line(event)
            return status
        sleep(poll_seconds)


def job_summary(source: str, *, follow: bool = False) -> Optional[Dict[str, Any]]:
    """The monitor's job source for SageMaker (see ``rectrain.monitor.follow.register_job_source``):
    a training job's status, final metrics and (with ``follow``) the logs of every host until it
    ends. None when ``source`` cannot be a job name."""
    if not JOB_NAME_RE.match(source):
        return None
    try:
        status = follow_job(source, follow=follow)
    except RectrainError as exc:
        raise UserError(f"{source!r} is not a run folder nor an s3:// URI, and as a SageMaker "
                        f"job name: {exc.message}", exc.fix) from exc
    return {"source": source, "kind": "sagemaker-job", "status": status.status,
            "secondary_status": status.secondary_status, "metrics": dict(status.metrics),
            "billable_seconds": status.billable_seconds, "failure_reason": status.failure_reason,
            "model_artifacts": status.model_artifacts, "checkpoint_s3": status.checkpoint_s3,
            "exit_code": status.exit_code}


def stop_job(job_name: str, sagemaker_client: Any) -> None:
    """``stop_training_job``: SageMaker sends SIGTERM; the container saves a checkpoint."""
    try:
        sagemaker_client.stop_training_job(TrainingJobName=job_name)
    except Exception as exc:  # noqa: BLE001
        raise aws.aws_error(exc, "sagemaker:StopTrainingJob", job_name) from exc


def download_job(job_name: str, dest: str, *, sagemaker_client: Any, s3: Optional[S3Service],
                 checkpoints: bool = False, extract: bool = True) -> Dict[str, str]:
    """Download ``model.tar.gz`` (and unpack it into ``dest/model``) and, with ``checkpoints``,
    the checkpoint prefix into ``dest/checkpoints``. Returns what was written."""
    status = describe_job(job_name, sagemaker_client)
    out = claim_output_dir(dest, command="sagemaker download", flag="--out",
                           writes=["model.tar.gz", "model/"] + (["checkpoints/"] if checkpoints else []))
    written: Dict[str, str] = {}
    if status.model_artifacts:
        tar_path = out / "model.tar.gz"
        assert s3 is not None
        download_file(s3, S3Uri.parse(status.model_artifacts), tar_path)
        written["model.tar.gz"] = str(tar_path)
        if extract:
            written["model"] = str(_extract(tar_path, out / "model"))
    elif not checkpoints:
        raise UserError(f"{job_name} has no model artifact yet (status {status.status}).",
                        "wait for the job to complete, or pass --checkpoints to fetch its checkpoints.")
    if checkpoints:
        if not status.checkpoint_s3:
            raise UserError(f"{job_name} has no CheckpointConfig.", "nothing to download.")
        target = out / "checkpoints"
        assert s3 is not None
        pull(s3, S3Uri.parse(status.checkpoint_s3), str(target), progress=False, verify_manifest=False)
        n = sum(1 for p in target.rglob("*") if p.is_file())
        written["checkpoints"] = f"{target} ({n} files)"
    return written


def _extract(tar_path: Path, target: Path) -> Path:
    safe_extract(tar_path, target)  # the one safe extractor: no escapes, links, devices, modes
    return target
