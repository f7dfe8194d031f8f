"""No secret leaves the machine (issue 25, items 5 and 8).

A real tiny run with a password in its MLflow URI (``http://alice:PASSWORD@127.0.0.1:PORT``),
an MLflow password in the environment and S3 keys in the environment, once against a live
MLflow server and once against one that does not answer (what could not be logged goes to the
problem log, which ships inside model.tar.gz). Every file of the run folder, every S3 object of
its checkpoint prefix, the command's output, the MLflow server's store and the engine
subprocess's environment (read from /proc while it runs) are searched for the secrets.
``sagemaker launch --dry-run`` must refuse credentials in ``mlflow_uri`` and warn about
secret-looking ``environment`` keys.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

from tests.security.gadgets import (
    bucket_objects,
    cli_env,
    files_containing,
    objects_containing,
    rectrain,
    shown,
)
from tests.training.tinydata import make_dataset, tiny_config

URI_PASSWORD = "SECRETPASS-7c41e2"
ENV_PASSWORD = "ENVSECRET-93d0b5"


@dataclass
class TrackedRun:
    returncode: int
    output: str
    run_dir: Path
    objects: Dict[str, bytes]
    secrets: List[str]
    uri: str
    engine_env: Optional[Dict[str, str]] = None
    mlflow: Any = None
    notes: List[str] = field(default_factory=list)


def _engine_environment(proc: subprocess.Popen) -> Optional[Dict[str, str]]:
    """The environment of the engine (``tools/train.py``) started by ``proc``, read from /proc
    while it runs; ``None`` when the run ended without one being seen."""
    import psutil

    parent = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            children = parent.children(recursive=True)
        except psutil.Error:
            break
        for child in children:
            try:
                if any(part.endswith("train.py") for part in child.cmdline()):
                    return dict(child.environ())
            except psutil.Error:
                continue
        time.sleep(0.05)
    return None


@pytest.fixture(scope="module", params=["live", "dead"])
def tracked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            s3_server: Any, engine: Any) -> Iterator[TrackedRun]:
    """``rectrain train --mlflow-uri http://alice:PASSWORD@... --checkpoint-s3 ...``."""
    pytest.importorskip("psutil")
    root = tmp_path_factory.mktemp(f"secrets-{request.param}")
    if request.param == "live":
        server = request.getfixturevalue("mlflow_server")
        port = server.port
    else:
        from tests.tracking.mlflow_server import free_port

        server, port = None, free_port()  # nothing listens there
    uri = f"http://alice:{URI_PASSWORD}@127.0.0.1:{port}"
    bucket = f"secrets-{uuid.uuid4().hex[:12]}"
    client = s3_server.client()
    client.create_bucket(Bucket=bucket)
    config = tiny_config(make_dataset(root / "data"), root / "cfg" / "tiny.yml", epochs=1)
    env = cli_env(s3_server.env, MLFLOW_TRACKING_USERNAME="alice", MLFLOW_TRACKING_PASSWORD=ENV_PASSWORD)
    argv = [sys.executable, "-m", "rectrain", "train", "--config", str(config), "--run-dir",
            str(root / "run"), "--device", "cpu", "--sub-epochs", "1", "--checkpoint-s3",
            f"s3://{bucket}/runs/tracked", "--mlflow-uri", uri, "--mlflow-experiment", "security",
            "--display", "plain", "--no-tensorboard"]
    with open(root / "stdout.txt", "wb") as out, open(root / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        engine_env = _engine_environment(proc)
        proc.wait(timeout=600)
    output = "".join((root / name).read_text(errors="replace") for name in ("stdout.txt", "stderr.txt"))
    yield TrackedRun(returncode=proc.returncode, output=output, run_dir=root / "run",
                     objects=bucket_objects(client, bucket),
                     secrets=[URI_PASSWORD, ENV_PASSWORD, s3_server.secret_key], uri=uri,
                     engine_env=engine_env, mlflow=server)


@pytest.mark.slow
def test_control_the_tracked_run_trained(tracked: TrackedRun) -> None:
    """The run completed (tracking never stops training) and, with the live server, MLflow
    has it with its metrics: the searches below look at a run that really logged."""
    assert tracked.returncode == 0, tracked.output[-4000:]
    assert tracked.objects, "nothing reached S3"
    if tracked.mlflow is not None:
        client = tracked.mlflow.client()
        experiment = client.get_experiment_by_name("security")
        assert experiment is not None, tracked.output[-4000:]
        runs = client.search_runs([experiment.experiment_id])
        assert runs and any(r.data.metrics for r in runs), tracked.output[-4000:]


@pytest.mark.slow
def test_no_secret_in_any_file_of_the_run(tracked: TrackedRun) -> None:
    hits = {s: files_containing(tracked.run_dir, s) for s in tracked.secrets}
    hits = {s[:10] + "...": files for s, files in hits.items() if files}
    assert not hits, f"secrets written into the run folder: {hits}"


@pytest.mark.slow
def test_no_secret_in_any_s3_object(tracked: TrackedRun) -> None:
    hits = {s[:10] + "...": objects_containing(tracked.objects, s) for s in tracked.secrets}
    hits = {s: keys for s, keys in hits.items() if keys}
    assert not hits, f"secrets uploaded: {hits}"


@pytest.mark.slow
def test_no_secret_in_the_output(tracked: TrackedRun) -> None:
    found = [s[:10] + "..." for s in tracked.secrets if s in tracked.output]
    lines = [line for line in tracked.output.splitlines() if any(s in line for s in tracked.secrets)]
    assert not found, f"secrets printed: {found}\n" + "\n".join(lines[:5])


@pytest.mark.slow
def test_no_secret_at_the_tracking_server(tracked: TrackedRun) -> None:
    """What rectrain sends to MLflow (params, tags, artifacts) holds no password."""
    if tracked.mlflow is None:
        pytest.skip("the dead-server run sends nothing")
    hits = {s[:10] + "...": files_containing(tracked.mlflow.root, s) for s in tracked.secrets}
    hits = {s: files for s, files in hits.items() if files}
    assert not hits, f"secrets stored by the MLflow server: {hits}"


@pytest.mark.slow
def test_the_engine_gets_no_credentials(tracked: TrackedRun) -> None:
    """The engine (tools/train.py) needs no S3 key and no MLflow password."""
    if tracked.mlflow is None:
        pytest.skip("checked once, on the live run")
    assert tracked.engine_env is not None, f"the engine subprocess was never seen\n{tracked.output[-3000:]}"
    leaked = sorted(k for k, v in tracked.engine_env.items() if any(s in v for s in tracked.secrets))
    assert not leaked, f"the engine inherits secrets in: {leaked}"


# ----------------------------------------------------------------------------- sagemaker launch
JOB = """\
name: thai-rec
role: arn:aws:iam::123456789012:role/RectrainSageMaker
image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/rectrain:0.1.0
region: us-east-1
train: s3://rec-bucket/datasets/thai/train
val: s3://rec-bucket/datasets/thai/val
output: s3://rec-bucket/rectrain/jobs
training:
  preset: th-ppocrv5-mobile
  dict: dict.txt
  epochs: 20
"""


def _dry_run(tmp_path: Path, extra: str, *flags: str) -> Any:
    job = tmp_path / "job.yaml"
    job.write_text(JOB + extra, encoding="utf-8")
    return rectrain(["sagemaker", "launch", "--job-config", job, "--dry-run", "--no-preflight", *flags],
                    cli_env(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x"))


@pytest.mark.parametrize("uri", [f"http://alice:{URI_PASSWORD}@mlflow.example.com:5000",
                                 f"https://mlflow.example.com/?token={URI_PASSWORD}"],
                         ids=["userinfo", "token-query"])
def test_launch_refuses_credentials_in_mlflow_uri(tmp_path: Path, uri: str) -> None:
    """The URI would travel in the CreateTrainingJob request's Environment (visible to anyone
    who can DescribeTrainingJob) and into the container's logs."""
    proc = _dry_run(tmp_path, f"mlflow_uri: {uri}\n")
    assert URI_PASSWORD not in proc.stdout + proc.stderr, shown(proc)
    assert proc.returncode != 0, shown(proc)


def test_control_launch_accepts_an_mlflow_uri_without_credentials(tmp_path: Path) -> None:
    proc = _dry_run(tmp_path, "mlflow_uri: https://mlflow.example.com:5000\n")
    assert proc.returncode == 0, shown(proc)
    assert "https://mlflow.example.com:5000" in proc.stdout


def test_launch_warns_about_secret_looking_environment_keys(tmp_path: Path) -> None:
    proc = _dry_run(tmp_path, "environment:\n  HF_TOKEN: hf_abcdef123456\n  WANDB_API_KEY: k123\n")
    assert proc.returncode == 0, shown(proc)
    assert "HF_TOKEN" in proc.stderr and "WANDB_API_KEY" in proc.stderr, \
        f"no warning names the secret-looking keys\n{shown(proc)}"


def test_launch_encrypts_traffic_between_the_instances_of_a_job(tmp_path: Path) -> None:
    """Several instances exchange gradients in the clear unless the request asks otherwise
    (issue 25, deliverable 7: on by default for multi-instance jobs, not only with a KMS key)."""
    import json

    proc = _dry_run(tmp_path, "", "--instance-count", "2")
    assert proc.returncode == 0, shown(proc)
    request = json.loads(proc.stdout)
    assert request.get("EnableInterContainerTrafficEncryption") is True, \
        {k: v for k, v in request.items() if k.startswith("Enable")}
