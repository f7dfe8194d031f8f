"""A run is one value: every front end builds the same TrainRequest (the Python API's keyword
arguments, the CLI's flags, the in-job program's contract), checked when it is made."""

from __future__ import annotations

from pathlib import Path

import pytest

from rectrain.cli.main import build_parser
from rectrain.cli.train import request_from_args
from rectrain.container.contract import DistributedPlan
from rectrain.container.entrypoint import train_request
from rectrain.engine import Engine
from rectrain.errors import StorageError, UserError
from rectrain.paths import MLPaths
from rectrain.sagemaker.jobconfig import TrainingOptions
from rectrain.storage.s3 import S3Uri
from rectrain.training.command import build_train_command
from rectrain.training.request import Placement, StopRules, TrainRequest


def test_keyword_arguments_become_one_request() -> None:
    request = TrainRequest.from_options(
        "c.yml", "runs/r1", device="cpu", gpus=[0, 1], checkpoint_s3="s3://bkt/runs/r1/", resume=True,
        nnodes=2, node_rank=1, master="10.0.0.1:29500", max_steps=50, max_seconds=30.0,
        early_stop=3, workers="auto", display="none")
    assert request.mode == "resume" and request.resume and not request.restart
    assert request.checkpoint_s3 == S3Uri("bkt", "runs/r1")  # typed once, no trailing slash
    assert request.placement == Placement(device="cpu", gpus=(0, 1), nnodes=2, node_rank=1,
                                          master="10.0.0.1:29500")
    assert not request.placement.uploads and request.placement.launcher
    assert request.stop == StopRules(max_steps=50, max_seconds=30.0, early_stop=3)
    assert request.run == Path("runs/r1").resolve() and request.checkpoints == request.run / "checkpoints"
    with pytest.raises(AttributeError):
        request.mode = "new"  # type: ignore[misc]  # frozen


def test_a_request_that_cannot_work_is_refused_when_made() -> None:
    with pytest.raises(UserError, match="exclude each other"):
        TrainRequest.from_options("c.yml", "r", resume=True, restart=True)
    with pytest.raises(UserError, match="--device 'tpu'"):
        TrainRequest.from_options("c.yml", "r", device="tpu")
    with pytest.raises(StorageError, match="not an S3 address"):
        TrainRequest.from_options("c.yml", "r", checkpoint_s3="bucket/prefix")
    with pytest.raises(ValueError, match="mode"):
        TrainRequest(Path("c.yml"), Path("r"), mode="continue")


def test_the_cli_builds_the_same_request() -> None:
    args = build_parser().parse_args([
        "train", "--config", "c.yml", "--run-dir", "runs/r1", "--device", "cpu", "--gpus", "0,1",
        "--checkpoint-s3", "s3://bkt/runs/r1", "--restart", "--max-steps", "50", "--max-seconds", "30",
        "--early-stop", "3", "--workers", "auto", "--display", "none", "--no-mlflow"])
    request = request_from_args(args)
    keywords = TrainRequest.from_options(
        "c.yml", "runs/r1", device="cpu", gpus=[0, 1], checkpoint_s3="s3://bkt/runs/r1", restart=True,
        max_steps=50, max_seconds=30.0, early_stop=3, workers="auto", display="none",
        tracking=request.tracking)
    assert request == keywords
    assert request.tracking is not None and request.tracking.mlflow is False


def test_the_in_job_program_builds_a_request_with_its_hosts_variables(tmp_path: Path) -> None:
    paths = MLPaths.resolve(str(tmp_path))
    plan = DistributedPlan(nnodes=2, node_rank=1, master="10.0.0.1:29500", gpus=[0, 1])
    request = train_request(tmp_path / "c.yml", tmp_path / "run", "gpu", plan,
                            {"NCCL_SOCKET_IFNAME": "eth0"}, paths, True, TrainingOptions(), None, 7,
                            "plain")
    assert request.mode == "resume" and request.checkpoints == paths.checkpoints.resolve()
    assert request.placement.env == {"NCCL_SOCKET_IFNAME": "eth0"}
    assert request.placement.node_rank == 1 and request.stop.max_steps == 7
    assert request.workers == "auto" and request.checkpoint_every_min == 30.0
    assert request.tracking is not None
    assert request.tracking.tensorboard_dir == str(paths.output / "tensorboard")


def test_the_hosts_variables_reach_the_engine(tmp_path: Path) -> None:
    engine = Engine(kind="checkout", root=tmp_path, python="python3", version="2.10")
    argv, env = build_train_command(engine, "c.yml", save_model_dir="ck", device="cpu",
                                    extra_env={"NCCL_SOCKET_IFNAME": "eth0"}, base_env={})
    assert env["NCCL_SOCKET_IFNAME"] == "eth0" and env["CUDA_VISIBLE_DEVICES"] == ""
    assert argv[-2:] == ["Global.save_model_dir=ck", "Global.use_gpu=false"]
