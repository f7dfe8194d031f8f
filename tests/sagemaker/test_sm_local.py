"""`run-local`: the SageMaker contract emulated against a real S3 server (SeaweedFS), with the
real entrypoint and engine on the CPU, interrupted twice (SIGTERM as a spot interruption) and
resumed from the checkpoints restored from S3."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from sm_helpers import make_tiny_dataset

from rectrain.emulator.run_local import download_prefix, local_request, run_local, write_contract
from rectrain.errors import ConfigError
from rectrain.paths import MLPaths
from rectrain.sagemaker.jobconfig import job_config_from_dict
from rectrain.storage.s3 import S3Uri


def _upload_tree(s3, root, bucket, prefix):
    for path in sorted(root.rglob("*")):
        if path.is_file():
            s3.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(root).as_posix()}")


def _job(bucket, endpoint, **training):
    return job_config_from_dict({
        "name": "runlocal", "instance_type": "ml.g5.xlarge", "spot": True, "max_run": "1h",
        "train": f"s3://{bucket}/datasets/thai/train", "val": f"s3://{bucket}/datasets/thai/val",
        "output": f"s3://{bucket}/jobs", "endpoint_url": endpoint,
        "training": {"preset": "crnn-mv3", "dict": "dict.txt", "batch_size": 4, **training}})


def test_contract_files_as_sagemaker_writes_them(tmp_path):
    job = _job("b", "http://127.0.0.1:1", epochs=3, image_shape=[3, 32, 100])
    request = local_request(job)
    paths = MLPaths.resolve(str(tmp_path))
    write_contract(paths, request)
    hp = json.loads(paths.hyperparameters.read_text(encoding="utf-8"))
    assert hp == {"preset": "crnn-mv3", "dict": "dict.txt", "epochs": "3", "batch_size": "4",
                  "image_shape": "[3, 32, 100]"}
    assert all(isinstance(v, str) for v in hp.values())
    rc = json.loads(paths.resource_config.read_text(encoding="utf-8"))
    assert rc["current_host"] == "algo-1" and rc["hosts"] == ["algo-1"]
    assert rc["current_instance_type"] == "ml.g5.xlarge"
    idc = json.loads(paths.input_data_config.read_text(encoding="utf-8"))
    assert idc["train"]["TrainingInputMode"] == "File"
    assert idc["val"]["S3DistributionType"] == "FullyReplicated"
    with pytest.raises(ConfigError, match="output"):
        local_request(job_config_from_dict({"train": "s3://b/t", "training": {"preset": "crnn-mv3"}}))


@pytest.mark.slow
def test_interrupted_twice_then_finished(s3, s3_server, s3_client, s3_bucket, tmp_path):
    from rectrain.storage.pack import pack_dataset

    data = make_tiny_dataset(tmp_path / "data")
    pack_dataset(data["root"], tmp_path / "packed", "20KB", progress=False)  # train: a packed dataset
    _upload_tree(s3_client, tmp_path / "packed", s3_bucket, "datasets/thai/train")
    _upload_tree(s3_client, data["root"], s3_bucket, "datasets/thai/val")  # val: plain files
    # long enough that neither 18-second attempt can finish, even on a fast idle machine
    job = _job(s3_bucket, s3_server.endpoint_url, epochs=48)

    # markers 5 s after the copy (2.5 sync rounds of run-local; production: 60 s); each
    # interruption comes 18 s into a start and once the agent has uploaded a complete `latest`
    # and the run's state of that start (on a loaded machine 18 s may be before the first one:
    # the restart would then have nothing to resume, which is right, but not this test)
    result = run_local(job, interrupt_after=[18, 18], work_dir=str(tmp_path / "ml"), s3=s3,
                       grace_seconds=120, extra_env={"RECTRAIN_SEAL_AFTER_S": "5"},
                       interrupt_after_checkpoint=True)
    ml = MLPaths.resolve(str(tmp_path / "ml"))
    assert result.exit_code == 0, result.summary() + "\n" + (result.failure or "")
    assert [a.interrupted for a in result.attempts] == [True, True, False]
    # 75: each interrupted start stopped by itself within the grace (after it, SIGKILL: -9)
    assert [a.exit_code for a in result.attempts] == [75, 75, 0]
    assert result.attempts[0].restored_files == 0
    assert result.attempts[1].restored_files > 0 and result.attempts[2].restored_files > 0

    # the run's history (mirrored beside the checkpoints by the runner) came back from S3 with
    # the checkpoints: the job resumed
    records = [json.loads(line) for line in (ml.checkpoints / "run" / "metrics.jsonl")
               .read_text(encoding="utf-8").splitlines() if line.strip()]
    resumes = [r for r in records if r.get("type") == "resume"]
    assert len(resumes) == 2 and max(r["global_step"] for r in resumes) > 0
    for resume in resumes:  # continued from the checkpoint, not restarted (max == 96 holds either way)
        i = records.index(resume)
        nxt = next(r for r in records[i + 1:] if r.get("type") == "train")
        assert nxt["global_step"] == resume["global_step"] + 1, (resume, nxt)
    steps = [r["global_step"] for r in records if r.get("type") == "train"]
    assert max(steps) == 96  # 48 epochs x 2 steps

    # /opt/ml/model as SageMaker packs it, uploaded where SageMaker puts model.tar.gz
    assert result.model_s3 == f"s3://{s3_bucket}/jobs/{result.job_name}/output/model.tar.gz"
    key = f"jobs/{result.job_name}/output/model.tar.gz"
    body = s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        names = set(tar.getnames())
        info = json.load(tar.extractfile("model.json"))
    assert {"model.json", "inference.pdiparams", "dict.txt", "config.yml", "metrics.jsonl"} <= names
    assert info["dictionary"]["file"] == "dict.txt"
    assert (ml.model / "dict.txt").read_bytes() == data["dict"].read_bytes()
    assert (ml.model / "inference.json").is_file() or (ml.model / "inference.pdmodel").is_file()
    assert (ml.output_data / "run" / "train.log").is_file()
    assert not ml.failure.exists()
    # the checkpoints are in S3 for the next restart / download
    restored = download_prefix(s3, S3Uri.parse(result.checkpoint_s3), tmp_path / "ck")
    assert restored > 0 and list((tmp_path / "ck").rglob("*.pdparams"))
    # TensorBoard events of every attempt, uploaded as TensorBoardOutputConfig says, read with
    # TensorBoard's own reader: one history of all 96 steps
    tb = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    n = download_prefix(s3, S3Uri(s3_bucket, f"jobs/{result.job_name}/tensorboard"), tmp_path / "tb")
    assert n >= 3  # one events file per attempt
    events = tb.EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert {e.step for e in events.Scalars("train/loss")} == set(range(1, 97))


@pytest.mark.slow
def test_failure_file_as_sagemaker_reads_it(s3, s3_server, s3_client, s3_bucket, tmp_path):
    data = make_tiny_dataset(tmp_path / "data")
    (data["root"] / "dict.txt").unlink()  # no dictionary: a user error, before any training
    _upload_tree(s3_client, data["root"], s3_bucket, "datasets/thai/train")
    job = job_config_from_dict({"name": "broken", "train": f"s3://{s3_bucket}/datasets/thai/train",
                                "output": f"s3://{s3_bucket}/jobs", "endpoint_url": s3_server.endpoint_url,
                                "training": {"preset": "crnn-mv3"}})
    result = run_local(job, s3=s3, work_dir=str(tmp_path / "ml"))
    assert result.exit_code == 2
    assert result.failure is not None and len(result.failure) <= 1024
    assert result.failure.startswith("DataError:") and "dict.txt" in result.failure
    assert "Fix:" in result.failure
    assert result.model_s3 is None
