"""``rectrain doctor``: is this machine ready to train? One line per check, a fix for each
failure; blocking failures make the command exit non-zero."""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

from rectrain.engine import find_engine
from rectrain.errors import RectrainError
from rectrain.machine.gpu import paddle_build, query_gpus

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""
    blocking: bool = False

    @property
    def ok(self) -> bool:
        return self.status != FAIL


@dataclass
class DoctorReport:
    device: str
    checks: List[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(c.status == FAIL and c.blocking for c in self.checks)

    def to_dict(self) -> dict:
        return {"device": self.device, "ok": self.ok, "checks": [asdict(c) for c in self.checks]}


def _python() -> Check:
    version = platform.python_version()
    if sys.version_info < (3, 9):  # noqa: UP036 - an old interpreter can still import this
        return Check("python", FAIL, version, "install Python 3.9 or newer.", True)
    return Check("python", OK, f"{version} ({sys.executable})")


def _paddle_and_gpu(device: str, python: str) -> List[Check]:
    checks: List[Check] = []
    build = paddle_build(python)
    if not build.installed:
        checks.append(Check("paddle", FAIL, f"PaddlePaddle is not importable ({build.error})",
                            "run ./setup.sh, or pip install paddlepaddle==3.3.1 (CPU) / "
                            "paddlepaddle-gpu (CUDA).", True))
    else:
        kind = f"CUDA build (CUDA {build.cuda_version}, cuDNN {build.cudnn_version})" \
            if build.cuda_build else "CPU-only build"
        status = OK if build.cuda_build or device == "cpu" else FAIL
        fix = "" if status == OK else (
            "install the CUDA build (pip install paddlepaddle-gpu==3.x from Paddle's CUDA index) "
            "or train on the CPU with --device cpu.")
        checks.append(Check("paddle", status, f"{build.version}, {kind}", fix, status == FAIL))
    gpus = query_gpus()
    if gpus.gpus:
        listing = "; ".join(f"{g.index}: {g.name} {g.memory_total_mb} MiB "
                            f"({g.memory_used_mb} MiB used)" for g in gpus.gpus)
        checks.append(Check("gpu", OK, f"{len(gpus.gpus)} GPU(s): {listing}"))
        checks.append(Check("driver", OK, f"NVIDIA driver {gpus.driver_version}, "
                                          f"CUDA driver API {gpus.cuda_driver_version}"))
    else:
        blocking = device != "cpu"
        checks.append(Check(
            "gpu", FAIL if blocking else WARN, f"no NVIDIA GPU visible ({gpus.error or 'none found'})",
            "run on a GPU machine (e.g. a SageMaker ml.g5 instance), or train on the CPU with "
            "--device cpu (slow; fine for the demo).", blocking))
    return checks


def _engine(paddleocr_dir: Optional[str]) -> Check:
    try:
        engine = find_engine(paddleocr_dir)
    except RectrainError as exc:
        return Check("engine", FAIL, exc.message, exc.fix or "", True)
    return Check("engine", OK, f"{engine.kind} {engine.version} at {engine.root}")


def _fonts() -> Check:
    found = []
    for package in ("fontpkg_sarabun", "fontpkg_noto_sans_thai"):
        spec = importlib.util.find_spec(package)
        if spec and spec.submodule_search_locations:
            root = Path(list(spec.submodule_search_locations)[0])
            if any(root.rglob("*.ttf")):
                found.append(package.replace("fontpkg_", "").replace("_", "-"))
    if not found:
        return Check("thai-fonts", WARN, "no Thai font packages found",
                     "pip install fontpkg-sarabun fontpkg-noto-sans-thai (needed by `rectrain data "
                     "synth` and the demo).")
    return Check("thai-fonts", OK, ", ".join(found))


def _s3(endpoint_url: Optional[str]) -> Check:
    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    try:
        import boto3  # noqa: F401
    except ImportError:
        return Check("s3", FAIL, "boto3 is not installed", "run ./setup.sh.", True)
    from rectrain.storage.aws_errors import error_code
    from rectrain.storage.service import S3Service

    # a health check answers in seconds: one attempt, no retry budget to spend on a dead endpoint
    s3 = S3Service(endpoint_url, max_attempts=1, connect_timeout=3, read_timeout=5, retry_budget_s=0)
    if not s3.has_credentials():
        return Check("s3", WARN, "no AWS credentials configured",
                     "export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or set a profile; for a local "
                     "S3 run `rectrain s3 serve` and export what it prints.")
    where = endpoint or "AWS S3"
    try:
        buckets = s3.call("list_buckets", "s3:ListAllMyBuckets", "s3://").get("Buckets", [])
    except RectrainError as exc:
        cause = exc.__cause__
        if type(cause).__name__ == "NoCredentialsError":
            return Check("s3", WARN, "no AWS credentials configured", "configure credentials.")
        code = error_code(cause) if cause is not None else ""
        if code:
            return Check("s3", FAIL, f"{where}: credentials refused ({code})",
                         "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile; then run "
                         "`rectrain s3 check s3://BUCKET/PREFIX` for per-permission detail.", True)
        return Check("s3", FAIL, f"{where} unreachable ({cause or exc})",
                     "check AWS_ENDPOINT_URL / --endpoint-url and the network; for a local S3 run "
                     "`rectrain s3 serve`.", True)
    return Check("s3", OK, f"{where} reachable, credentials accepted ({len(buckets)} bucket(s) visible)")


def _disk(path: str) -> Check:
    usage = shutil.disk_usage(path)
    free_gb = usage.free / 2**30
    if free_gb < 2:
        return Check("disk", FAIL, f"{free_gb:.1f} GiB free in {path}",
                     "free some space or use another --workdir.", True)
    return Check("disk", OK, f"{free_gb:.0f} GiB free in {path}")


def run_doctor(device: str = "gpu", endpoint_url: Optional[str] = None,
               paddleocr_dir: Optional[str] = None, workdir: str = ".") -> DoctorReport:
    """Run every check. ``device='cpu'`` asks whether CPU training can run (no GPU needed)."""
    report = DoctorReport(device=device)
    steps: List[Callable[[], object]] = [
        lambda: report.checks.append(_python()),
        lambda: report.checks.extend(_paddle_and_gpu(device, sys.executable)),
        lambda: report.checks.append(_engine(paddleocr_dir)),
        lambda: report.checks.append(_fonts()),
        lambda: report.checks.append(_s3(endpoint_url)),
        lambda: report.checks.append(_disk(workdir)),
    ]
    for step in steps:
        step()
    return report
