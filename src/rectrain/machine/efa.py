"""Whether this container can send NCCL traffic over EFA (a host fact, probed, never assumed).

NCCL reaches EFA only through two user-space pieces that must be *in the image*: libfabric
with its ``efa`` provider, and the aws-ofi-nccl plugin (``libnccl-net.so``) that NCCL loads to
use libfabric; plus an EFA device the instance exposes (``/sys/class/infiniband/<efa>``,
``/dev/infiniband/uverbs*``). AWS's EFA installer puts them under ``/opt/amazon/efa`` and
``/opt/amazon/ofi-nccl`` (older images: ``/opt/aws-ofi-nccl``). Without the plugin NCCL falls
back to TCP sockets, whatever ``FI_PROVIDER`` says; then ``NCCL_PROTO=simple`` (meant for EFA's
out-of-order delivery) only slows every collective, NVLink included. So the EFA variables are
set only when all three are found (:func:`probe_efa`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

LIB_DIRS = ("/opt/amazon/efa/lib", "/opt/amazon/efa/lib64", "/opt/amazon/ofi-nccl/lib",
            "/opt/amazon/ofi-nccl/lib64", "/opt/aws-ofi-nccl/lib", "/usr/local/lib",
            "/usr/lib/x86_64-linux-gnu")
DEVICE_DIRS = ("/sys/class/infiniband", "/dev/infiniband")


@dataclass(frozen=True)
class EfaProbe:
    libfabric: Optional[str]  # libfabric.so* found
    ofi_nccl: Optional[str]  # the aws-ofi-nccl plugin, libnccl-net*.so*
    devices: List[str]  # EFA devices the instance exposes

    @property
    def ready(self) -> bool:
        return bool(self.libfabric and self.ofi_nccl and self.devices)

    def missing(self) -> str:
        """What is absent, in words ('' when ready)."""
        parts = []
        if not self.libfabric:
            parts.append("libfabric (AWS's EFA installer)")
        if not self.ofi_nccl:
            parts.append("the aws-ofi-nccl plugin (libnccl-net.so)")
        if not self.devices:
            parts.append("an EFA device (/dev/infiniband)")
        return ", ".join(parts)


def _first(dirs: Sequence[Path], patterns: Sequence[str]) -> Optional[str]:
    for folder in dirs:
        for pattern in patterns:
            found = sorted(folder.glob(pattern)) if folder.is_dir() else []
            if found:
                return str(found[0])
    return None


def probe_efa(root: str = "/", ld_library_path: Optional[str] = None) -> EfaProbe:
    """Look for libfabric, the aws-ofi-nccl plugin (in AWS's install folders and
    ``LD_LIBRARY_PATH``) and an EFA device, under ``root`` (tests give a fake tree)."""
    base = Path(root)
    extra = (os.environ.get("LD_LIBRARY_PATH", "") if ld_library_path is None else ld_library_path)
    dirs = [base / d.lstrip("/") for d in LIB_DIRS]
    dirs += [base / d.lstrip("/") for d in extra.split(":") if d.startswith("/")]
    devices: List[str] = []
    for folder in (base / d.lstrip("/") for d in DEVICE_DIRS):
        if folder.is_dir():
            devices += sorted(str(p) for p in folder.iterdir()
                              if "efa" in p.name or p.name.startswith("uverbs"))
    return EfaProbe(_first(dirs, ["libfabric.so*"]),
                    _first(dirs, ["libnccl-net.so*", "libnccl-net-ofi.so*"]), devices)
