"""The container entrypoint: failure file, packed channels, the GPU assertion, and (slow) a
whole contract run on the CPU with the real engine."""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

import pytest
from sm_helpers import make_tiny_dataset

from rectrain.container.entrypoint import (
    FAILURE_LIMIT,
    check_gpu,
    failure_text,
    find_label_file,
    prepare_channel,
    run_entrypoint,
)
from rectrain.errors import ConfigError, DataError, EnvironmentProblem
from rectrain.paths import MLPaths


def _contract(root: Path, hyperparameters: dict, instance_type: str = "ml.m5.xlarge",
              hosts=("algo-1",), current="algo-1") -> MLPaths:
    paths = MLPaths.resolve(str(root))
    paths.input_config.mkdir(parents=True, exist_ok=True)
    paths.hyperparameters.write_text(json.dumps(hyperparameters), encoding="utf-8")
    paths.resource_config.write_text(json.dumps({"current_host": current, "hosts": list(hosts),
                                                 "current_instance_type": instance_type}), encoding="utf-8")
    paths.input_data_config.write_text(json.dumps({"train": {"TrainingInputMode": "File"}}), encoding="utf-8")
    return paths


def test_failure_text_puts_the_cause_first_and_fits_1024():
    exc = ConfigError("hyperparameters.json: training.epochs = 'x' is not a valid int.", "fix epochs.")
    text = failure_text(exc, "\n".join(f"[log] line {i} " + "x" * 80 for i in range(100)))
    assert len(text) <= FAILURE_LIMIT
    assert text.startswith("ConfigError: hyperparameters.json: training.epochs")
    assert "Fix: fix epochs." in text
    assert text.rstrip().endswith("x")  # the most recent log lines are kept, not the first
    assert "line 99" in text
    try:
        {}["missing"]
    except KeyError as bug:
        text = failure_text(bug)
    assert text.startswith("InternalError: KeyError: 'missing' at test_sm_entrypoint.py:")


def test_missing_preset_fails_in_seconds_with_a_failure_file(tmp_path, monkeypatch):
    monkeypatch.setenv("RECTRAIN_DEVICE", "cpu")
    paths = _contract(tmp_path, {"epochs": "2"})
    make_tiny_dataset(paths.channel("train"))
    started = time.monotonic()
    code = run_entrypoint(str(tmp_path))
    assert code == 2 and time.monotonic() - started < 10
    failure = paths.failure.read_text(encoding="utf-8")
    assert failure.startswith("ConfigError: hyperparameters.json has no preset or base_config.")
    assert "Fix:" in failure and len(failure) <= FAILURE_LIMIT


def test_bad_hyperparameter_value_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("RECTRAIN_DEVICE", "cpu")
    paths = _contract(tmp_path, {"preset": "crnn-mv3", "epochs": "many"})
    assert run_entrypoint(str(tmp_path)) == 2
    assert "epochs = 'many'" in paths.failure.read_text(encoding="utf-8")


def test_gpu_instance_with_a_cpu_paddle_fails_fast(monkeypatch):
    """This venv has the CPU build of Paddle: on a GPU instance that must stop in seconds."""
    monkeypatch.delenv("RECTRAIN_DEVICE", raising=False)
    from rectrain.machine.gpu import paddle_build

    if paddle_build().cuda_build:
        pytest.skip("this machine has a CUDA build of Paddle")
    import rectrain.machine.gpu as gpu

    started = time.monotonic()
    if not gpu.query_gpus().gpus:  # no GPU here: NVML is asked first, and says so
        with pytest.raises(EnvironmentProblem, match="NVML sees none"):
            check_gpu("ml.g5.xlarge")
        # NVML as on a g5 (the one fake: there is no GPU here); the Paddle probe is real
        monkeypatch.setattr(gpu, "query_gpus", lambda: gpu.GpuReport(
            gpus=[gpu.GpuInfo(0, "NVIDIA A10G", 23028, 0)], driver_version="550.0"))
    with pytest.raises(EnvironmentProblem, match="CPU-only Paddle") as info:
        check_gpu("ml.g5.xlarge")
    assert time.monotonic() - started < 60
    assert "Dockerfile" in info.value.fix
    assert check_gpu("ml.m5.xlarge") == 0


@pytest.mark.gpu
def test_gpu_instance_sees_its_gpus(monkeypatch):
    from rectrain.machine.gpu import paddle_build, query_gpus

    if not query_gpus().gpus or not paddle_build().cuda_build:
        pytest.skip("needs an NVIDIA GPU and a CUDA build of Paddle")
    monkeypatch.delenv("RECTRAIN_DEVICE", raising=False)
    assert check_gpu("ml.g5.xlarge") >= 1


def test_packed_channel_is_unpacked_and_verified(tmp_path):
    from rectrain.storage.pack import pack_dataset

    data = make_tiny_dataset(tmp_path / "src")
    channel = tmp_path / "channel"
    pack_dataset(data["root"], channel, "20KB", progress=False)
    assert not (channel / "train.txt").exists()
    out = prepare_channel(channel, tmp_path / "work")
    assert (out / "train.txt").read_bytes() == data["train"].read_bytes()
    assert len(list((out / "images").glob("*.png"))) == 12
    assert find_label_file(out, "train", None).name == "train.txt"


def test_tar_channel_and_unsafe_archive(tmp_path):
    data = make_tiny_dataset(tmp_path / "src")
    channel = tmp_path / "channel"
    channel.mkdir()
    with tarfile.open(channel / "images.tar.gz", "w:gz") as tar:
        tar.add(data["root"] / "images", arcname="images")
    (channel / "train.txt").write_bytes(data["train"].read_bytes())
    out = prepare_channel(channel, tmp_path / "work")
    assert (out / "images" / "000.png").is_file() and (out / "train.txt").is_file()
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "labels.txt").write_text("a.png\tก\n", encoding="utf-8")
    assert prepare_channel(plain, tmp_path / "w2") == plain  # nothing packed: used as is
    evil = tmp_path / "evil"
    evil.mkdir()
    with tarfile.open(evil / "x.tar", "w") as tar:
        info = tarfile.TarInfo("../../escape.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(DataError, match="unsafe member"):
        prepare_channel(evil, tmp_path / "w3")
    assert not (tmp_path / "escape.txt").exists()


def test_label_file_detection(tmp_path):
    (tmp_path / "a.txt").write_text("x\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("x\n", encoding="utf-8")
    with pytest.raises(DataError, match="which file") as info:
        find_label_file(tmp_path, "train", None)
    assert "train_labels" in info.value.fix
    assert find_label_file(tmp_path, "train", "b.txt").name == "b.txt"
    with pytest.raises(DataError, match="not in the train channel"):
        find_label_file(tmp_path, "train", "c.txt")


def test_gpu_operation_check_reports_paddles_own_error():
    """The one real GPU operation, run with this machine's CPU build of Paddle: it fails in
    seconds with Paddle's message and the fix (on a GPU without kernels it fails the same way)."""
    from rectrain.container.startup import gpu_operation_check
    from rectrain.machine.gpu import paddle_build

    if paddle_build().cuda_build:
        pytest.skip("this machine has a CUDA build of Paddle (test_gpu_instance_sees_its_gpus runs the op)")
    started = time.monotonic()
    with pytest.raises(EnvironmentProblem, match="one GPU operation failed in Paddle") as info:
        gpu_operation_check()
    assert time.monotonic() - started < 90
    assert "gpu" in str(info.value).lower() and "--instance-type" in info.value.fix
