"""``rectrain sagemaker run-local``: the SageMaker container contract on this machine.

What SageMaker does around the container, done here against S3 (AWS or a local server):

- an ``/opt/ml`` tree under a temp dir: ``input/config/hyperparameters.json`` (the request's
  HyperParameters, all strings), ``resourceconfig.json``, ``inputdataconfig.json``;
- every input channel downloaded to ``input/data/<channel>`` (File mode), its ``S3Uri``
  matched as a key prefix as SageMaker does (:mod:`rectrain.emulator.channels`);
- ``/opt/ml/checkpoints`` restored from ``CheckpointConfig.S3Uri`` before each start (random
  order, new mtimes), synced to it while the container runs (deletions too), nothing uploaded
  after a stop: SageMaker's checkpoint agent, emulated once
  (:mod:`rectrain.emulator.checkpoint_agent`) for one host and for two (:mod:`.cluster`);
- the real entrypoint (``rectrain sagemaker entrypoint train``) as a subprocess, on the CPU;
- ``--interrupt-after SECONDS``: SIGTERM, the 120-second grace, SIGKILL, then a fresh start
  with the checkpoints restored from S3 (a spot interruption);
- on success ``model/`` packed as ``model.tar.gz`` and ``output/data`` as ``output.tar.gz``
  under ``<output>/<job>/output/``, as SageMaker uploads them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from rectrain.emulator.channels import download_channel
from rectrain.emulator.checkpoint_agent import SageMakerCheckpointSync
from rectrain.errors import EXIT_INTERRUPTED, EXIT_OK, ConfigError, EnvironmentProblem
from rectrain.logs import get_logger
from rectrain.outputs import claim_output_dir, remove_file, remove_tree, tar_writer
from rectrain.paths import MLPaths
from rectrain.sagemaker import aws
from rectrain.sagemaker.jobconfig import JobConfig
from rectrain.sagemaker.request import build_training_job_request
from rectrain.sagemaker.tune import TUNING_MARK
from rectrain.storage.objects import upload_file
from rectrain.storage.pull import pull
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import S3Service

log = get_logger("sagemaker.local")
GRACE_SECONDS = 120.0
SYNC_EVERY_SECONDS = 2.0
LOCAL_ROLE = "arn:aws:iam::000000000000:role/rectrain-run-local"
LOCAL_IMAGE = "000000000000.dkr.ecr.us-east-1.amazonaws.com/rectrain:run-local"


@dataclass
class Attempt:
    number: int
    exit_code: int
    seconds: float
    interrupted: bool
    restored_files: int
    uploaded_files: int
    hosts: Dict[str, Any] = field(default_factory=dict)  # several hosts: per host exit code, files


@dataclass
class LocalRunResult:
    job_name: str
    ml_root: str
    exit_code: int
    attempts: List[Attempt] = field(default_factory=list)
    model_dir: Optional[str] = None
    model_s3: Optional[str] = None
    checkpoint_s3: Optional[str] = None
    failure: Optional[str] = None

    def summary(self) -> str:
        lines = [f"{self.job_name}: exit {self.exit_code} after {len(self.attempts)} start(s)"]
        for a in self.attempts:
            what = "interrupted (SIGTERM)" if a.interrupted else f"exit {a.exit_code}"
            lines.append(f"  start {a.number}: {what} after {a.seconds:.0f} s; restored "
                         f"{a.restored_files} checkpoint file(s), uploaded {a.uploaded_files}")
            for host, info in sorted(a.hosts.items()):
                lines.append(f"    {host}: exit {info['exit_code']}, restored {info['restored_files']}, "
                             f"uploaded {info['uploaded_files']}")
        if self.model_dir:
            lines.append(f"  model: {self.model_dir}")
        if self.model_s3:
            lines.append(f"  model.tar.gz: {self.model_s3}")
        if self.checkpoint_s3:
            lines.append(f"  checkpoints: {self.checkpoint_s3}")
        if self.failure:
            lines.append(f"  failure: {self.failure}")
        lines.append(f"  /opt/ml: {self.ml_root}")
        return "\n".join(lines)


# ------------------------------------------------------------------ S3 helpers
def download_prefix(s3: S3Service, uri: S3Uri, dest: Path) -> int:
    """Every object under ``uri`` into ``dest`` (relative paths kept, each verified; a key that
    would land outside ``dest`` is refused); returns the count. Nothing there: 0."""
    result = pull(s3, uri, dest, progress=False, verify_manifest=False, empty_ok=True)
    return result.files_total


def upload_tensorboard(s3: S3Service, local_dir: Any, uri: S3Uri) -> int:
    """What SageMaker does with ``TensorBoardOutputConfig``: every file under ``local_dir`` to
    ``uri`` with its relative path. Returns the number of files."""
    root = Path(local_dir)
    if not root.is_dir():
        return 0
    count = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        target = uri.join(path.relative_to(root).as_posix())
        s3.call("upload_file", "s3:PutObject", target, Filename=str(path), Bucket=target.bucket,
                Key=target.key)
        count += 1
    return count


# ------------------------------------------------------------------ the emulation
def _local_job(job: JobConfig) -> JobConfig:
    """The job with placeholders for what only AWS needs (role, image)."""
    if not job.output and not job.checkpoint_s3:
        raise ConfigError("run-local needs output: (or checkpoint_s3:) to keep checkpoints in S3.",
                          "pass --output s3://bucket/rectrain/jobs.")
    import dataclasses

    image = job.image or LOCAL_IMAGE.replace("us-east-1", job.region or "us-east-1")  # the job's region
    return dataclasses.replace(job, role=job.role or LOCAL_ROLE, image=image,
                               output=job.output or job.checkpoint_s3)


def local_request(job: JobConfig) -> Dict[str, Any]:
    """The job's request, with placeholders for what only AWS needs (role, image)."""
    return build_training_job_request(_local_job(job))


def local_trial_request(job: JobConfig, number: int, tuned: Dict[str, str]) -> Dict[str, Any]:
    """The request of trial ``number`` of the tuning job named exactly ``job.name``, as SageMaker
    makes it from the tuning request (``tuned``: this trial's values): named
    ``<name>-<NNN>-<hex>``, ``_tuning_objective_metric`` in its hyperparameters, the one
    checkpoint prefix all trials share. Two trials of one name share that prefix."""
    import dataclasses

    from rectrain.sagemaker.tune import build_tuning_request, parse_param, trial_request

    if not tuned:
        raise ConfigError("a tuning trial needs the values its tuning job chose.",
                          "pass them, e.g. {'lr': '0.001'}.")
    tuning = build_tuning_request(dataclasses.replace(_local_job(job), exact_name=True),
                                  [parse_param(f"{k}=choice:{v}") for k, v in sorted(tuned.items())],
                                  max_jobs=max(number, 1), max_parallel=1)
    return trial_request(tuning, number, tuned)


def training_job_arn(request: Dict[str, Any], region: Optional[str] = None) -> str:
    """``arn:aws:sagemaker:<region>:<account>:training-job/<name>`` (SageMaker writes the name
    in lower case in the ARN; the account is the role's)."""
    role = str(request.get("RoleArn", "")).split(":")
    account = role[4] if len(role) > 5 and role[4] else "000000000000"
    name = request["TrainingJobName"].lower()
    return f"arn:aws:sagemaker:{region or 'us-east-1'}:{account}:training-job/{name}"


def job_environment(request: Dict[str, Any], region: Optional[str] = None) -> Dict[str, str]:
    """The variables SageMaker sets in the training container: the request's ``Environment``
    and ``TRAINING_JOB_NAME`` / ``TRAINING_JOB_ARN`` (AWS's training toolkit reads the job name
    from ``TRAINING_JOB_NAME``)."""
    env = dict(request.get("Environment", {}))
    env.update({"TRAINING_JOB_NAME": request["TrainingJobName"],
                "TRAINING_JOB_ARN": training_job_arn(request, region)})
    return env


def write_contract(paths: MLPaths, request: Dict[str, Any], *, host: str = "algo-1",
                   hosts: Sequence[str] = ("algo-1",), interface: str = "eth0") -> None:
    """What SageMaker writes in ``/opt/ml/input/config``: ``hyperparameters.json``,
    ``resourceconfig.json``, ``inputdataconfig.json`` (documented by AWS: "How Amazon SageMaker
    Provides Training Information"), and, as real training containers hold them,
    ``checkpointconfig.json`` (the request's ``CheckpointConfig``: ``LocalPath``, ``S3Uri``;
    read by AWS's smdebug), ``tensorboardoutputconfig.json`` and ``trainingjobconfig.json``
    (the request). See docs/sagemaker.md for what is not emulated."""
    from rectrain.outputs import write_json

    config = paths.hyperparameters.parent
    if request.get("CheckpointConfig"):
        write_json(config / "checkpointconfig.json", dict(request["CheckpointConfig"]))
    if request.get("TensorBoardOutputConfig"):
        write_json(config / "tensorboardoutputconfig.json", dict(request["TensorBoardOutputConfig"]))
    write_json(config / "trainingjobconfig.json", request)
    write_json(paths.hyperparameters, {k: str(v) for k, v in request["HyperParameters"].items()})
    write_json(paths.resource_config, {
        "current_host": host, "current_instance_type": request["ResourceConfig"]["InstanceType"],
        "current_group_name": "homogeneousCluster", "hosts": list(hosts),
        "instance_groups": [{"instance_group_name": "homogeneousCluster",
                             "instance_type": request["ResourceConfig"]["InstanceType"],
                             "hosts": list(hosts)}],
        "network_interface_name": interface})
    write_json(paths.input_data_config, {
        c["ChannelName"]: {"TrainingInputMode": c.get("InputMode", "File"),
                           "S3DistributionType": c["DataSource"]["S3DataSource"]["S3DataDistributionType"],
                           "RecordWrapperType": "None"}
        for c in request["InputDataConfig"]})


AGENT_AT_STOP = ("stop", "grace")


def download_channels(paths: MLPaths, request: Dict[str, Any], s3: S3Service) -> None:
    """Every channel of the request into ``input/data/<channel>``, matched as SageMaker matches
    an ``S3Prefix`` (a key prefix: :mod:`rectrain.emulator.channels`)."""
    for channel in request["InputDataConfig"]:
        uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
        dest = paths.channel(channel["ChannelName"])
        if dest.exists():
            remove_tree(dest)
        n = download_channel(s3, S3Uri.parse(uri), dest)
        log.info("run-local: channel %s: %d file(s) from %s", channel["ChannelName"], n, uri)


def _entrypoint_argv(root: Path, max_steps: Optional[int]) -> List[str]:
    argv = [sys.executable, "-m", "rectrain", "sagemaker", "entrypoint", "train", "--ml-root", str(root)]
    if max_steps:
        argv += ["--max-steps", str(max_steps)]
    return argv


def _run_attempt(argv: List[str], env: Dict[str, str], sync: SageMakerCheckpointSync,
                 interrupt_after: Optional[float], grace: float,
                 ready: Optional[Callable[[], bool]] = None,
                 agent_at_stop: str = "stop") -> Tuple[int, bool]:
    """Run the entrypoint; SIGTERM it ``interrupt_after`` seconds in (and once ``ready()``),
    SIGKILL after ``grace``. ``agent_at_stop``: ``stop``, the agent stops before the SIGTERM
    (nothing more goes up); ``grace``, it keeps syncing until the process ends (AWS does not
    say it stops at once): rectrain must be safe under both."""
    proc = subprocess.Popen(argv, env=env, stdout=sys.stderr, stderr=sys.stderr)
    sync.start()
    started = time.monotonic()
    interrupted = False
    term_at: Optional[float] = None
    try:
        while True:
            try:
                code = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if interrupt_after is not None and not interrupted and now - started >= interrupt_after \
                    and (ready is None or ready()):
                log.warning("run-local: simulated spot interruption: SIGTERM after %.0f s", now - started)
                if agent_at_stop == "stop":
                    sync.stop()  # a stopped job: SageMaker uploads nothing more
                proc.send_signal(signal.SIGTERM)
                interrupted, term_at = True, now
            if term_at is not None and now - term_at > grace:
                log.error("run-local: still running %.0f s after SIGTERM: SIGKILL (SageMaker does the same)",
                          grace)
                proc.kill()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        sync.stop(final=not interrupted)  # only a job that ended by itself gets a last upload
    return code, interrupted


def run_local(job: JobConfig, *, interrupt_after: Sequence[float] = (), work_dir: Optional[str] = None,
              device: str = "cpu", max_steps: Optional[int] = None, s3: Optional[S3Service] = None,
              grace_seconds: float = GRACE_SECONDS, max_starts: Optional[int] = None,
              extra_env: Optional[Dict[str, str]] = None,
              interrupt_after_checkpoint: bool = False,
              request: Optional[Dict[str, Any]] = None, agent_at_stop: str = "stop") -> LocalRunResult:
    """Emulate the job: one start per entry of ``interrupt_after`` (each interrupted after that
    many seconds, and with ``interrupt_after_checkpoint`` only once the agent has uploaded what
    a restart resumes from), then a last start that runs to the end. ``agent_at_stop``: whether
    the checkpoint agent stops at the interruption (``stop``) or keeps syncing through the
    grace period (``grace``; see :func:`_run_attempt`). ``instance_count: 2`` runs
    two hosts in network namespaces (:mod:`rectrain.emulator.cluster`; root on Linux) or
    refuses. ``request``: run this one instead of the job's (a tuning trial's:
    :func:`local_trial_request`)."""
    if agent_at_stop not in AGENT_AT_STOP:
        raise ConfigError(f"agent_at_stop {agent_at_stop!r}: one of {', '.join(AGENT_AT_STOP)}.",
                          "pass --agent-at-stop stop or --agent-at-stop grace.")
    request = request or local_request(job)
    name = request["TrainingJobName"]
    count = int(request["ResourceConfig"]["InstanceCount"])
    if count > 2:
        raise ConfigError(f"run-local emulates 1 or 2 hosts; the job asks for {count}.",
                          "pass --instance-count 2 (the emulation of several hosts) or 1.")
    if count == 2:
        from rectrain.emulator.netns import unavailable_reason

        reason = unavailable_reason()
        if reason:
            raise EnvironmentProblem(f"run-local cannot emulate 2 hosts here: {reason}.",
                                     "run as root on Linux (network namespaces), or pass --instance-count 1.")
    s3 = s3 or aws.s3_for(job)
    root = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix=f"rectrain-{name}-"))
    # its input/data/<channel> and checkpoints/ (per host with 2 hosts) are replaced: only in a
    # folder rectrain made
    claim_output_dir(root, command="sagemaker run-local", flag="--work-dir",
                     writes=["algo-1/", "algo-2/"] if count == 2 else
                     ["input/", "checkpoints/", "model/", "output/", "code/"])
    if count == 2:
        import rectrain.emulator.run_local as local
        from rectrain.emulator.cluster import run_cluster

        return run_cluster(local, job, request, s3, root, interrupt_after=interrupt_after, device=device,
                           max_steps=max_steps, grace_seconds=grace_seconds, max_starts=max_starts,
                           extra_env=extra_env, interrupt_after_checkpoint=interrupt_after_checkpoint,
                           agent_at_stop=agent_at_stop)
    paths = MLPaths.resolve(str(root))
    _fresh_instance(paths, request, s3)
    env = dict(os.environ)
    env.update({"RECTRAIN_ML_ROOT": str(root), "RECTRAIN_DEVICE": device, "PYTHONUNBUFFERED": "1",
                "SM_CURRENT_HOST": "algo-1"})
    env.update(job_environment(request, job.region))
    env.update(extra_env or {})
    plan = list(interrupt_after) + [None]
    if max_starts:
        plan = plan[:max_starts]
    result = LocalRunResult(job_name=name, ml_root=str(root), exit_code=EXIT_OK,
                            checkpoint_s3=request["CheckpointConfig"]["S3Uri"])
    for number, after in enumerate(plan, start=1):
        attempt = _start(number, after, paths, request, s3, _entrypoint_argv(root, max_steps), env,
                         grace_seconds, interrupt_after_checkpoint, agent_at_stop)
        result.attempts.append(attempt)
        result.exit_code = attempt.exit_code
        if not attempt.interrupted:
            break
        if attempt.exit_code == EXIT_OK:
            log.warning("run-local: the job finished before the interruption took effect")
            break
        if attempt.exit_code != EXIT_INTERRUPTED:
            log.warning("run-local: exit code %s after SIGTERM (expected %s: stopped after saving)",
                        attempt.exit_code, EXIT_INTERRUPTED)
        # SageMaker restarts an interrupted spot job on a new instance
    _finish_job(job, s3, paths, result)
    return result


def trial_folder(request: Dict[str, Any]) -> str:
    """The job's folder in the checkpoint folder: a tuning trial's training job name (the
    container keeps its checkpoints there), '' for any other job."""
    return str(request["TrainingJobName"]) if TUNING_MARK in request.get("HyperParameters", {}) else ""


def _fresh_instance(paths: MLPaths, request: Dict[str, Any], s3: S3Service) -> None:
    """The contract files and every channel downloaded, as SageMaker prepares an instance."""
    write_contract(paths, request)
    download_channels(paths, request, s3)
    for folder in (paths.model, paths.output_data, paths.failure.parent):
        folder.mkdir(parents=True, exist_ok=True)


def _start(number: int, after: Optional[float], paths: MLPaths, request: Dict[str, Any],
           s3: S3Service, argv: List[str], env: Dict[str, str], grace: float,
           wait_for_checkpoint: bool = False, agent_at_stop: str = "stop") -> Attempt:
    """One start on a new instance: the checkpoint folder emptied and restored by the agent,
    the entrypoint run (interrupted after ``after`` seconds), the TensorBoard events uploaded."""
    checkpoint_uri = request["CheckpointConfig"]["S3Uri"]
    trial = trial_folder(request)
    if paths.checkpoints.exists():
        remove_tree(paths.checkpoints)
    paths.checkpoints.mkdir(parents=True)
    sync = SageMakerCheckpointSync(s3, paths.checkpoints, S3Uri.parse(checkpoint_uri),
                                   every=SYNC_EVERY_SECONDS)
    restored = sync.restore()  # random order, new mtimes (see checkpoint_agent)
    remove_file(paths.failure)
    log.info("run-local: start %d (%s), %d checkpoint file(s) restored from %s", number,
             f"interrupt after {after:.0f} s" if after is not None else "to the end", restored,
             checkpoint_uri)
    started = time.monotonic()
    code, interrupted = _run_attempt(argv, env, sync, after, grace,
                                     (lambda: sync.restart_ready(trial)) if wait_for_checkpoint else None,
                                     agent_at_stop)
    attempt = Attempt(number, code, time.monotonic() - started, interrupted, restored, sync.uploaded)
    if request.get("TensorBoardOutputConfig"):  # SageMaker uploads the events; a new instance has none
        tb_local = paths.output / "tensorboard"
        upload_tensorboard(s3, tb_local, S3Uri.parse(request["TensorBoardOutputConfig"]["S3OutputPath"]))
        remove_tree(tb_local, ignore_errors=True)
    return attempt


def _finish_job(job: JobConfig, s3: S3Service, paths: MLPaths, result: LocalRunResult) -> None:
    """The failure reason, and on success the model and output packed to S3 as SageMaker does."""
    if paths.failure.is_file():
        result.failure = paths.failure.read_text(encoding="utf-8", errors="replace")
    if result.exit_code == EXIT_OK and any(paths.model.iterdir()):
        result.model_dir = str(paths.model)
        out_prefix = f"{str(job.output or job.checkpoint_s3).rstrip('/')}/{result.job_name}/output"
        result.model_s3 = _upload_tar(s3, paths.model, f"{out_prefix}/model.tar.gz")
        if paths.output_data.is_dir() and any(paths.output_data.iterdir()):
            _upload_tar(s3, paths.output_data, f"{out_prefix}/output.tar.gz")


def _upload_tar(s3: S3Service, folder: Path, uri: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / Path(uri).name
        with tar_writer(archive, "w:gz") as tar:
            for item in sorted(folder.iterdir()):
                tar.add(item, arcname=item.name)
        upload_file(s3, archive, S3Uri.parse(uri))
    return uri
