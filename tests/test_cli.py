"""The CLI itself: help for every family, doctor and engine info answering truthfully,
user errors as one line and exit code 2, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rectrain.cli.main import COMMAND_MODULES, main


def run_cli(*args: str, env=None) -> subprocess.CompletedProcess:  # noqa: ANN001
    return subprocess.run([sys.executable, "-m", "rectrain", *args], capture_output=True,
                          text=True, timeout=300, env=env)


def test_help_lists_every_family(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in ("doctor", "engine", "demo", "s3", "data", "config", "train"):
        assert name in out
    assert len(COMMAND_MODULES) == len(set(COMMAND_MODULES))


def test_a_family_alone_parses_as_in_the_whole_parser() -> None:
    """`rectrain data ...` builds only the data family's parser (a faster start); its help and
    options are those of the whole parser, and a word that is no family's own command name
    (`model`, whose commands are export/evaluate/predict) gets the whole parser's answer."""
    from rectrain.cli.main import _command, build_parser

    def families(parser):  # noqa: ANN001, ANN202
        return next(a for a in parser._actions if a.dest == "command").choices

    whole = families(build_parser())
    for name in COMMAND_MODULES:
        alone = families(build_parser(name))
        if name in whole:
            assert list(alone) == [name]
            assert alone[name].format_help() == whole[name].format_help()
        else:  # model: export, evaluate, predict
            assert list(alone) == list(whole)
    assert _command(["--log-level", "debug", "data", "unpack"]) == "data"
    assert _command(["--version"]) is None
    model = run_cli("model")
    assert model.returncode == 2 and "'export'" in model.stderr and "'doctor'" in model.stderr


def test_help_loads_no_library_stage() -> None:
    """`rectrain --help` stays quick because the CLI imports the library in its handlers: no
    feature package, no boto3, numpy, YAML, matplotlib or rich at start-up (no timed test:
    what is imported is what costs)."""
    code = ("import runpy, sys\nsys.argv = ['rectrain', '--help']\ntry:\n"
            "    runpy.run_module('rectrain', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(' '.join(sorted(sys.modules)), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    loaded = set(result.stderr.split())
    assert "rectrain.cli.main" in loaded
    heavy = {"boto3", "botocore", "numpy", "yaml", "matplotlib", "PIL", "rich", "paddle", "cv2"}
    stages = {"storage", "data", "config", "training", "checkpoints", "model", "monitor", "sagemaker",
              "demo", "container", "emulator", "runs", "runlog", "loaderbench", "tracking"}
    assert sorted(m for m in loaded if m.split(".")[0] in heavy) == []
    assert sorted(m for m in loaded if m.startswith("rectrain.") and m.split(".")[1] in stages) == []


def test_engine_info_json() -> None:
    proc = run_cli("engine", "info", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["kind"] == "unstructured-paddleocr"
    assert info["version"] == "2.10.0"
    assert info["paddle"].startswith("3.")


def test_engine_info_bad_dir_is_one_line_user_error(tmp_path) -> None:  # noqa: ANN001
    proc = run_cli("engine", "info", "--paddleocr-dir", str(tmp_path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "not a PaddleOCR training engine" in proc.stderr and "Fix:" in proc.stderr


def _installed_paddle() -> tuple:
    """(version, CUDA build?) from the installed distributions' metadata: a source independent
    of the probe doctor runs (which imports paddle)."""
    from importlib import metadata

    for dist, cuda in (("paddlepaddle-gpu", True), ("paddlepaddle", False)):
        try:
            return metadata.version(dist), cuda
        except metadata.PackageNotFoundError:
            continue
    pytest.skip("no paddlepaddle distribution installed")


def test_doctor_is_truthful_about_this_machine() -> None:
    import os

    proc = run_cli("doctor", "--json", "--device", "cpu")
    report = json.loads(proc.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    version, cuda_build = _installed_paddle()
    assert checks["paddle"]["detail"].startswith(version)
    assert ("CUDA build" in checks["paddle"]["detail"]) == cuda_build
    # the kernel driver's own list of NVIDIA GPUs, not NVML (which doctor uses)
    gpus_dir = "/proc/driver/nvidia/gpus"
    has_gpu = os.path.isdir(gpus_dir) and bool(os.listdir(gpus_dir))
    assert (checks["gpu"]["status"] == "ok") == has_gpu
    assert checks["engine"]["status"] == "ok"
    assert proc.returncode == (0 if report["ok"] else 1)
    if not has_gpu:
        gpu_proc = run_cli("doctor", "--json")  # default: planning GPU training
        assert gpu_proc.returncode == 1
        assert json.loads(gpu_proc.stdout)["ok"] is False


def test_doctor_reports_unreachable_s3(tmp_path) -> None:  # noqa: ANN001
    import os

    env = dict(os.environ, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y", AWS_DEFAULT_REGION="us-east-1")
    proc = run_cli("doctor", "--json", "--device", "cpu", "--endpoint-url", "http://127.0.0.1:9", env=env)
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["s3"]["status"] == "fail"
    assert "unreachable" in checks["s3"]["detail"]
    assert proc.returncode == 1


@pytest.mark.gpu
def test_doctor_sees_the_gpu() -> None:
    from rectrain.machine.gpu import query_gpus

    if not query_gpus().gpus:
        pytest.skip("no NVIDIA GPU on this machine")
    proc = run_cli("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["gpu"]["status"] == "ok"
    assert "MiB" in checks["gpu"]["detail"]
