"""The training image: the CUDA build chosen from the instance type, the constraints file that
pins exactly what the tests ran with, and its resolution for the image's Python against the
package index."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from packaging.version import Version

from rectrain.errors import ConfigError
from rectrain.machine.instances import runnable_problems
from rectrain.sagemaker.image import BUILD_ARGS, plan_image

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
CONSTRAINTS = ROOT / "docker" / "constraints.txt"


def _arg(name: str) -> str:
    m = re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE.read_text(encoding="utf-8"), re.M)
    assert m, f"ARG {name} in docker/Dockerfile"
    return m.group(1)


def _pins():
    pins = {}
    for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name] = version
    return pins


@pytest.mark.parametrize("instance_type, variant, cuda", [
    ("ml.g4dn.xlarge", "cu118", "11.8"), ("ml.g5.xlarge", "cu118", "11.8"),
    ("ml.g6e.12xlarge", "cu118", "11.8"), ("ml.p4d.24xlarge", "cu118", "11.8"),
    ("ml.p5.48xlarge", "cu129", "12.9"), ("ml.p5en.48xlarge", "cu129", "12.9"),
    ("ml.p6-b200.48xlarge", "cu129", "12.9"), ("ml.g7e.2xlarge", "cu129", "12.9"),
])
def test_cuda_build_from_the_instance_type(instance_type, variant, cuda):
    plan = plan_image(account="123456789012", region="us-east-1", tag="0.2.0", instance_type=instance_type)
    assert plan.variant == variant and plan.tag == f"0.2.0-{variant}"
    argv = plan.build_argv()
    assert f"CUDA_VERSION={cuda}" in argv and argv[argv.index("-t") + 1] == plan.uri
    # the image it makes is accepted at launch for that instance type
    assert runnable_problems(instance_type, plan.uri) == []


def test_refused_builds():
    with pytest.raises(ConfigError, match="arm64"):
        plan_image(account="1", region="us-east-1", instance_type="ml.p6e-gb200.36xlarge")
    with pytest.raises(ConfigError, match="CUDA 11.8"):
        plan_image(account="1", region="us-east-1", instance_type="ml.p5.48xlarge", cuda="cu118")
    assert plan_image(account="1", region="us-east-1").variant == "cu118"


def test_dockerfile_defaults_are_the_cu118_build():
    for key, value in BUILD_ARGS["cu118"].items():
        assert _arg(key) == value


def test_constraints_pin_what_requirements_pin():
    """Every runtime pin of requirements.txt is in docker/constraints.txt at the same version
    (paddlepaddle as paddlepaddle-gpu); regenerate with docker/make_constraints.py."""
    pins = _pins()
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("# Development"):
            break
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, version = line.partition("==")
        name = re.sub(r"[-_.]+", "-", name).lower()
        key = "paddlepaddle-gpu" if name == "paddlepaddle" else name
        assert key in pins and Version(pins[key]) == Version(version), \
            f"{key}: constraints {pins.get(key)}, requirements {version}"
    assert all(v and re.match(r"^[0-9][0-9A-Za-z.+!-]*$", v) for v in pins.values())


def _index_reachable() -> bool:
    try:
        with urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=10):  # noqa: S310
            return True
    except OSError:
        return False


@pytest.mark.index
@pytest.mark.slow
def test_constraints_resolve_with_wheels_for_the_images_python(tmp_path):
    """pip resolves every pin (and their dependencies) from wheels for the image's exact Python
    on manylinux x86_64: nothing is built from source, nothing needs a newer Python.
    paddlepaddle-gpu comes from Paddle's own CUDA index (checked by the image build)."""
    if not _index_reachable():
        pytest.skip("the package index (pypi.org) cannot be reached")
    python = _arg("PYTHON_VERSION")
    req = tmp_path / "image-requirements.txt"
    req.write_text("\n".join(f"{n}=={v}" for n, v in _pins().items() if n != "paddlepaddle-gpu") + "\n",
                   encoding="utf-8")
    platforms = []
    for tag in ("manylinux_2_35_x86_64", "manylinux_2_28_x86_64", "manylinux_2_17_x86_64",
                "manylinux2014_x86_64"):
        platforms += ["--platform", tag]
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--isolated", "install", "--dry-run", "--ignore-installed",
         "--only-binary=:all:", "--python-version", python, "--implementation", "cp", *platforms,
         "-r", str(req), "-c", str(CONSTRAINTS), "--report", str(report), "-q"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    installed = {re.sub(r"[-_.]+", "-", i["metadata"]["name"]).lower(): i["metadata"]["version"]
                 for i in json.loads(report.read_text(encoding="utf-8"))["install"]}
    pins = _pins()
    assert {n: installed.get(n) for n in pins if n != "paddlepaddle-gpu"} == \
        {n: v for n, v in pins.items() if n != "paddlepaddle-gpu"}
