"""GPU facts from NVML (nvidia-ml-py) and Paddle's build, without importing Paddle in-process.

Importing Paddle costs seconds and memory; the build question is answered by a short
subprocess of the interpreter that runs the engine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from typing import List, Optional


@dataclass
class GpuInfo:
    index: int
    name: str
    memory_total_mb: int
    memory_used_mb: int


@dataclass
class GpuReport:
    gpus: List[GpuInfo] = field(default_factory=list)
    driver_version: Optional[str] = None
    cuda_driver_version: Optional[str] = None
    error: Optional[str] = None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def query_gpus() -> GpuReport:
    """Visible NVIDIA GPUs with memory, via NVML. Never raises."""
    try:
        import pynvml  # provided by nvidia-ml-py
    except ImportError:
        return GpuReport(error="nvidia-ml-py is not installed")
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - NVML raises its own error types
        return GpuReport(error=f"NVML unavailable ({_text(exc)})")
    try:
        report = GpuReport(driver_version=_text(pynvml.nvmlSystemGetDriverVersion()))
        try:
            cuda = pynvml.nvmlSystemGetCudaDriverVersion()
            report.cuda_driver_version = f"{cuda // 1000}.{(cuda % 1000) // 10}"
        except Exception:  # noqa: BLE001
            pass
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            report.gpus.append(GpuInfo(i, _text(pynvml.nvmlDeviceGetName(handle)),
                                       int(mem.total) // 2**20, int(mem.used) // 2**20))
        return report
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass


@dataclass
class PaddleBuild:
    installed: bool
    version: Optional[str] = None
    cuda_build: bool = False
    cuda_version: Optional[str] = None
    cudnn_version: Optional[str] = None
    gpu_count: int = 0
    error: Optional[str] = None


_PROBE = (
    "import json,sys\n"
    "try:\n"
    "    import paddle\n"
    "except Exception as e:\n"
    "    print(json.dumps({'installed': False, 'error': repr(e)})); sys.exit(0)\n"
    "cuda = bool(paddle.is_compiled_with_cuda())\n"
    "info = {'installed': True, 'version': paddle.__version__, 'cuda_build': cuda}\n"
    "if cuda:\n"
    "    try:\n"
    "        info['cuda_version'] = paddle.version.cuda()\n"
    "        info['cudnn_version'] = str(paddle.version.cudnn())\n"
    "        info['gpu_count'] = paddle.device.cuda.device_count()\n"
    "    except Exception as e:\n"
    "        info['error'] = repr(e)\n"
    "print(json.dumps(info))\n"
)


def paddle_build(python: Optional[str] = None, timeout: float = 120.0) -> PaddleBuild:
    """Which Paddle the engine's interpreter has, and whether it is a CUDA build."""
    try:
        out = subprocess.run([python or sys.executable, "-c", _PROBE], capture_output=True,
                             text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        return PaddleBuild(installed=False, error=str(exc))
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return PaddleBuild(installed=False, error=(out.stderr.strip().splitlines() or ["no output"])[-1])
    data = json.loads(lines[-1])
    return PaddleBuild(**{k: v for k, v in data.items() if k in PaddleBuild.__dataclass_fields__})
