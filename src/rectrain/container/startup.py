"""What the container checks and decides before it trains (used by the entrypoint):

- the GPUs: counted by NVML, a CUDA build of Paddle that sees as many, one real GPU
  operation (a build without kernels for the GPU fails in seconds);
- the launch plan: on several hosts the first host's IPv4 address as the master (bounded DNS
  retry) and the engine's environment (socket interface, EFA, gloo on the CPU);
- the scratch folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from rectrain.container.contract import DistributedPlan, ResourceConfig, distributed_plan, is_gpu_instance
from rectrain.errors import EnvironmentProblem
from rectrain.logs import get_logger
from rectrain.paths import MLPaths

log = get_logger("sagemaker.entrypoint")


# ------------------------------------------------------------------ GPU
# One real GPU operation (a matmul and a cuDNN convolution): a CUDA build without kernels for
# this GPU's generation fails here in seconds ("no kernel image is available"), not inside
# the engine after the data download was paid for.
_GPU_OP = (
    "import paddle\n"
    "paddle.set_device('gpu:0')\n"
    "x = paddle.ones([64, 64], dtype='float32')\n"
    "s = float(paddle.matmul(x, x).sum())\n"
    "assert s == 64.0 * 64 * 64, s\n"
    "c = paddle.nn.functional.conv2d(paddle.ones([1, 3, 8, 8]), paddle.ones([4, 3, 3, 3]))\n"
    "assert float(c.sum()) == 4 * 6 * 6 * 27.0, float(c.sum())\n"
    "print('gpu-op-ok', paddle.device.cuda.get_device_name(0))\n"
)


def gpu_operation_check(python: Optional[str] = None, timeout: float = 180.0) -> str:
    """Run :data:`_GPU_OP` in the engine's interpreter; the GPU's name, or
    :class:`EnvironmentProblem` with Paddle's own error."""
    import subprocess
    import sys

    try:
        out = subprocess.run([python or sys.executable, "-c", _GPU_OP], capture_output=True, text=True,
                             timeout=timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        raise EnvironmentProblem(f"the GPU check could not run ({exc}).",
                                 "rebuild the image with docker/Dockerfile.") from exc
    ok = [line for line in out.stdout.splitlines() if line.startswith("gpu-op-ok")]
    if out.returncode != 0 or not ok:
        lines = [line for line in (out.stderr + out.stdout).splitlines() if line.strip()]
        why = " | ".join(lines[-3:])[-400:] or f"exit code {out.returncode}"
        raise EnvironmentProblem(f"one GPU operation failed in Paddle ({why}).",
                                 "the image's CUDA build has no kernels for this GPU or the driver is "
                                 "too old: build the image for this instance type with `rectrain "
                                 "sagemaker image --instance-type <type>` (CUDA 12.9 for Hopper and newer).")
    return ok[-1].partition(" ")[2]


def check_gpu(instance_type: Optional[str], python: Optional[str] = None, *,
              device: Optional[str] = None) -> int:
    """Number of GPUs to train on, counted by NVML in the container (never from the instance
    type's name). On a GPU instance: GPUs visible to NVML, a CUDA build of Paddle that sees
    the same number, and one real GPU operation, or :class:`EnvironmentProblem` in seconds.
    On a CPU instance: 0. ``device`` (``RECTRAIN_DEVICE``) forces ``cpu`` or ``gpu``."""
    expect_gpu = is_gpu_instance(instance_type) or device == "gpu"
    if device == "cpu":
        return 0
    if not expect_gpu:
        return 0
    from rectrain.machine.gpu import paddle_build, query_gpus

    nvml = query_gpus()
    if not nvml.gpus:
        raise EnvironmentProblem(f"{instance_type} should have NVIDIA GPUs but NVML sees none "
                                 f"({nvml.error or 'device count 0'}).",
                                 "SageMaker starts GPU containers with the NVIDIA runtime: check that the "
                                 "image is built from docker/Dockerfile and the instance type has GPUs.")
    build = paddle_build(python, timeout=120.0)
    if not build.installed:
        raise EnvironmentProblem(f"Paddle cannot be imported in the container ({build.error}).",
                                 "rebuild the image with docker/Dockerfile (paddlepaddle-gpu).")
    if not build.cuda_build:
        raise EnvironmentProblem(f"{instance_type} has GPUs but the image has a CPU-only Paddle "
                                 f"{build.version}.", "build the image from docker/Dockerfile "
                                 "(`rectrain sagemaker image --build --push`) and push it again.")
    if build.gpu_count != len(nvml.gpus):
        raise EnvironmentProblem(f"NVML sees {len(nvml.gpus)} GPU(s) ({nvml.gpus[0].name}) but Paddle "
                                 f"{build.version} (CUDA {build.cuda_version}) sees {build.gpu_count} "
                                 f"({build.error or 'device_count()'}).",
                                 "the image's CUDA must be supported by the instance's driver "
                                 f"({nvml.driver_version}, CUDA {nvml.cuda_driver_version}): build the image "
                                 "for this instance type with `rectrain sagemaker image --instance-type`; "
                                 "do not set CUDA_VISIBLE_DEVICES in the job's environment.")
    name = gpu_operation_check(python)
    log.info("Paddle %s, CUDA %s, %d GPU(s) (%s, driver %s): one GPU operation passed", build.version,
             build.cuda_version, len(nvml.gpus), name, nvml.driver_version)
    return len(nvml.gpus)


# ------------------------------------------------------------------ launch plan
def launch_plan(resource: ResourceConfig, gpu_count: int, *, env: Optional[Dict[str, str]] = None,
                resolve: Any = None, resolve_timeout: Optional[float] = None,
                ) -> Tuple[DistributedPlan, Dict[str, str]]:
    """This host's distributed plan and the environment variables for the engine. Several
    hosts: the first host's name and this host's own are resolved to IPv4 addresses (bounded
    retry, ``resolve_timeout`` seconds; on timeout :class:`EnvironmentProblem`, which becomes
    ``/opt/ml/output/failure``)."""
    from rectrain.container.hosts import launch_env, resolve_host

    resolve = resolve or (lambda host: resolve_host(host, timeout=resolve_timeout))
    current = dict(os.environ if env is None else env)
    master_ip = own_ip = None
    if len(resource.hosts) > 1:
        master_ip = resolve(resource.sorted_hosts[0])
        own_ip = master_ip if resource.is_master else resolve(resource.current_host)
    plan = distributed_plan(resource, gpu_count, master_address=master_ip, host_address=own_ip)
    extra = launch_env(resource.network_interface, resource.instance_type, plan.nnodes, current,
                       device="gpu" if gpu_count > 0 else "cpu")
    extra.update({k: v for k, v in plan.launcher_env().items() if k not in current})
    return plan, extra


# ------------------------------------------------------------------ scratch
def scratch_dir(paths: MLPaths, given: Optional[str] = None) -> Path:
    """Where unpacked channels, the built config and the export staging go:
    ``given`` (``RECTRAIN_SCRATCH``); on SageMaker (``/opt/ml``) ``/tmp/rectrain-work``, never a folder
    under ``/opt/ml`` that SageMaker does not manage (it is the image's own layer there);
    locally (run-local, tests) ``<ml root>/work``, so that each emulated host has its own."""
    if given:
        return Path(given)
    if str(paths.root) == "/opt/ml":
        import tempfile

        return Path(tempfile.gettempdir()) / "rectrain-work"
    return paths.root / "work"
