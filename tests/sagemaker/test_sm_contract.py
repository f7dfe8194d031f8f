"""The container contract as SageMaker writes it: hyperparameters (all strings), resource
config, and the distributed launch for several hosts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sm_helpers import NOW, job_dict

from rectrain.container.contract import (
    distributed_plan,
    is_gpu_instance,
    parse_hyperparameters,
    parse_resource_config,
    read_contract,
)
from rectrain.engine import Engine, engine_command
from rectrain.errors import ConfigError
from rectrain.paths import MLPaths
from rectrain.sagemaker.jobconfig import job_config_from_dict
from rectrain.sagemaker.request import build_training_job_request

TWO_HOSTS = {"current_host": "algo-2", "current_instance_type": "ml.g5.12xlarge",
             "current_group_name": "homogeneousCluster", "hosts": ["algo-2", "algo-1"],
             "network_interface_name": "eth0"}


def test_hyperparameters_round_trip_through_strings(tmp_path):
    job = job_config_from_dict(job_dict(training={
        "preset": "th-ppocrv5-mobile", "dict": "dict.txt", "epochs": 7, "lr": 0.001, "batch_size": 32,
        "image_shape": [3, 48, 320], "amp": True, "overrides": ["Global.print_batch_step=5"],
        "pretrained": "s3://b/w/best_accuracy"}))
    hp = build_training_job_request(job, NOW)["HyperParameters"]
    paths = MLPaths.resolve(str(tmp_path))
    paths.input_config.mkdir(parents=True)
    paths.hyperparameters.write_text(json.dumps(hp), encoding="utf-8")  # as SageMaker writes it
    options, resource = read_contract(paths)
    assert options.epochs == 7 and options.lr == 0.001 and options.batch_size == 32
    assert options.image_shape == [3, 48, 320] and options.amp is True
    assert options.overrides == ["Global.print_batch_step=5"]
    assert options.pretrained == "channel:pretrained"
    assert resource.hosts == ["algo-1"] and resource.is_master  # no resourceconfig.json: one host


def test_sdk_style_quoted_strings_and_sdk_keys_are_accepted():
    options = parse_hyperparameters({"preset": '"crnn-mv3"', "epochs": "3",
                                     "sagemaker_program": '"train.py"'})
    assert options.preset == "crnn-mv3" and options.epochs == 3


def test_unknown_hyperparameter_is_refused():
    with pytest.raises(ConfigError, match="epoch") as info:
        parse_hyperparameters({"preset": "crnn-mv3", "epoch": "3"})
    assert "epochs" in info.value.fix


def test_two_host_distributed_launch():
    resource = parse_resource_config(TWO_HOSTS, env={})
    assert resource.sorted_hosts == ["algo-1", "algo-2"] and resource.host_index == 1
    assert not resource.is_master
    plan = distributed_plan(resource, gpu_count=4, master_address="10.0.1.5", host_address="10.0.1.6")
    assert (plan.nnodes, plan.node_rank, plan.master, plan.gpus) == (2, 1, "10.0.1.5:29500", [0, 1, 2, 3])
    assert plan.launch_args() == ["--gpus", "0,1,2,3", "--master", "10.0.1.5:29500", "--nnodes", "2",
                                  "--rank", "1"]
    assert plan.launcher_env() == {"POD_IP": "10.0.1.6"}
    first = distributed_plan(parse_resource_config({**TWO_HOSTS, "current_host": "algo-1"}, env={}), 4,
                             master_address="10.0.1.5")
    assert first.node_rank == 0 and first.master == "10.0.1.5:29500"
    # a host name as the master hangs every host in Paddle's launcher: refused
    with pytest.raises(ValueError, match="IPv4"):
        distributed_plan(resource, 4, master_address="algo-1")
    with pytest.raises(ValueError, match="IPv4"):
        distributed_plan(resource, 4)
    # the engine command the runner builds from the plan
    engine = Engine(root=Path("/engine"), kind="checkout", version="2.10", python="python3")
    argv, env = engine_command(engine, "train", "/cfg.yml", gpus=plan.gpus, nnodes=plan.nnodes,
                               node_rank=plan.node_rank, master=plan.master)
    launch = argv.index("paddle.distributed.launch")
    assert argv[launch + 1:argv.index("/engine/tools/train.py")] == plan.launch_args()


def test_single_host_plans():
    one = parse_resource_config({"current_host": "algo-1", "hosts": ["algo-1"]}, env={})
    assert distributed_plan(one, 1).launch_args() == []  # one GPU: a plain process
    assert distributed_plan(one, 8).launch_args() == ["--gpus", "0,1,2,3,4,5,6,7"]
    assert distributed_plan(one, 0).launch_args() == []  # CPU
    with pytest.raises(ConfigError):
        parse_resource_config({"current_host": "algo-3", "hosts": ["algo-1"]}, env={})


def test_gpu_instances():
    assert is_gpu_instance("ml.g5.xlarge") and is_gpu_instance("ml.p4d.24xlarge")
    assert is_gpu_instance("ml.g4dn.12xlarge")
    assert not is_gpu_instance("ml.m5.xlarge") and not is_gpu_instance(None)
