"""`run-local --instance-count 2`: two SageMaker hosts in real network namespaces, each with its
own /opt/ml tree, training data-parallel on the CPU through paddle.distributed.launch (gloo),
interrupted together and resumed from the same checkpoint restored from a real S3 server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sm_helpers import make_tiny_dataset

from rectrain.emulator.run_local import run_local
from rectrain.errors import ConfigError, EnvironmentProblem
from rectrain.paths import MLPaths
from rectrain.sagemaker.jobconfig import job_config_from_dict


def _upload_tree(s3, root, bucket, prefix):
    for path in sorted(root.rglob("*")):
        if path.is_file():
            s3.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(root).as_posix()}")


def _job(bucket, endpoint, count=2, **training):
    return job_config_from_dict({
        "name": "twohosts", "instance_type": "ml.m5.xlarge", "instance_count": count, "spot": True,
        "max_run": "1h", "train": f"s3://{bucket}/data/train", "val": f"s3://{bucket}/data/val",
        "output": f"s3://{bucket}/jobs", "endpoint_url": endpoint,
        "training": {"preset": "crnn-mv3", "dict": "dict.txt", "batch_size": 4, **training}})


def _records(path: Path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_more_hosts_than_emulated_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="1 or 2 hosts"):
        run_local(_job("b", "http://127.0.0.1:1", count=3), work_dir=str(tmp_path), s3=object())


def test_two_hosts_refused_where_namespaces_cannot_be_made(tmp_path, monkeypatch):
    import rectrain.emulator.netns as netns

    monkeypatch.setattr(netns, "unavailable_reason", lambda: "not root (ip netns needs CAP_SYS_ADMIN)")
    with pytest.raises(EnvironmentProblem, match="cannot emulate 2 hosts here: not root") as info:
        run_local(_job("b", "http://127.0.0.1:1"), work_dir=str(tmp_path), s3=object())
    assert "--instance-count 1" in info.value.fix


def test_cli_refuses_three_hosts():
    proc = subprocess.run([sys.executable, "-m", "rectrain", "sagemaker", "run-local", "--train", "s3://b/t",
                           "--output", "s3://b/o", "--preset", "crnn-mv3", "--instance-count", "3",
                           "--endpoint-url", "http://127.0.0.1:1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "1 or 2 hosts" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_two_hosts_train_together_and_resume_from_the_same_checkpoint(
        host_network_available, s3, s3_server, s3_client, s3_bucket, tmp_path):
    data = make_tiny_dataset(tmp_path / "data")
    _upload_tree(s3_client, data["root"], s3_bucket, "data/train")
    _upload_tree(s3_client, data["root"], s3_bucket, "data/val")
    epochs = 40  # long enough that the first start cannot end before what a restart needs is in S3
    job = _job(s3_bucket, s3_server.endpoint_url, epochs=epochs)

    # interrupted once algo-1's agent has uploaded a complete `latest` of this start (its marker,
    # written once the files are RECTRAIN_SEAL_AFTER_S old) and the run's state, well before the
    # 40 epochs end, however fast or slow the machine. Nothing is uploaded after the stop (the
    # one emulation of SageMaker's agent, the same as one host's): what the restart resumes
    # from must be in S3 before it. The files must be old enough that the agent, which scans
    # every 2 s and uploads in any order, has sent their final bytes before the marker (60 s in
    # production; 6 s here, three scans)
    result = run_local(job, interrupt_after=[5.0], work_dir=str(tmp_path / "ml"), s3=s3,
                       grace_seconds=120, interrupt_after_checkpoint=True,
                       extra_env={"RECTRAIN_SEAL_AFTER_S": "6"})
    print(result.summary())
    assert result.exit_code == 0, result.summary() + "\n" + (result.failure or "")
    assert [a.interrupted for a in result.attempts] == [True, False]
    first, last = result.attempts
    assert {h: i["exit_code"] for h, i in first.hosts.items()} == {"algo-1": 75, "algo-2": 75}
    assert {h: i["exit_code"] for h, i in last.hosts.items()} == {"algo-1": 0, "algo-2": 0}
    # both hosts restored the same checkpoint files from S3 for the second start
    assert last.hosts["algo-1"]["restored_files"] == last.hosts["algo-2"]["restored_files"] > 0

    one, two = (MLPaths.resolve(str(tmp_path / "ml" / h)) for h in ("algo-1", "algo-2"))
    for paths, host in ((one, "algo-1"), (two, "algo-2")):
        rc = json.loads(paths.resource_config.read_text(encoding="utf-8"))
        assert rc["current_host"] == host and rc["hosts"] == ["algo-1", "algo-2"]
        assert rc["network_interface_name"].startswith("rt")
    # both hosts resumed the same run from the same checkpoint (restored from S3 on each)
    s1 = json.loads((one.output_data / "run" / "run-state.json").read_text(encoding="utf-8"))
    s2 = json.loads((two.output_data / "run-algo-2" / "run-state.json").read_text(encoding="utf-8"))
    assert s1["run_id"] == s2["run_id"]
    r1, r2 = s1["history"][-1], s2["history"][-1]
    assert r1["resume_step"] == r2["resume_step"] > 0
    # an epoch-end checkpoint (`latest`, or the `iter_epoch_N` saved with it when that one's
    # marker reached S3 first: the agent uploads in any order), the same one on both hosts
    resumed = Path(r1["resumed_from"]).name
    assert resumed == Path(r2["resumed_from"]).name
    assert resumed == "latest" or re.fullmatch(r"iter_epoch_\d+", resumed), resumed
    # data parallel: 8 images, batch 4 per rank, 2 ranks -> 1 step per epoch (one host alone: 2).
    # The gradients are all-reduced every step, so both hosts took exactly these steps: a host
    # with fewer would leave the other waiting in the all-reduce, and both exited 0 together.
    m1 = _records(one.output_data / "run" / "metrics.jsonl")
    assert max(r["global_step"] for r in m1 if r.get("type") == "train") == epochs
    for name in ("algo-1", "algo-2"):
        log = (tmp_path / "ml" / name / "output" / "data" / ("run" if name == "algo-1" else "run-algo-2")
               / "train.log").read_text(encoding="utf-8", errors="replace")
        seg = [line for line in log.splitlines() if line.startswith("# rectrain segment")]
        assert seg and all("--nnodes 2" in line and "--master 198.18." in line for line in seg)
        assert "Exit code 0" in log
    # only algo-1 writes checkpoints and the model (every rank of the engine writes its
    # config.yml beside them; nothing else)
    for attempt in result.attempts:
        assert set(attempt.hosts["algo-2"]["written"]) <= {"config.yml"}, attempt.hosts["algo-2"]
        assert any(w.endswith(".pdparams") for w in attempt.hosts["algo-1"]["written"])
    assert not any(two.model.iterdir())
    assert {"model.json", "inference.pdiparams", "dict.txt"} <= {p.name for p in one.model.iterdir()}
    assert result.model_s3 and result.model_dir == str(one.model)
