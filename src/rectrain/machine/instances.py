"""The one instance table: what rectrain knows about SageMaker training instances.

- :data:`FAMILIES`: each family's accelerator, GPU generation (CUDA compute capability), CPU
  architecture, local NVMe instance storage and EFA;
- :data:`TYPES`: the usual instance types' vCPUs, memory, GPU count and on-demand price (what
  ``--workers auto`` sizes the data loader for, what ``rectrain bench loader`` projects onto,
  what a job's cost estimate multiplies).

Every family of botocore's ``TrainingInstanceType`` enum is in :data:`FAMILIES` (a test
checks it against the installed botocore), so a new family is a failing test, never a silent
guess. Classification is by the family *token* (``p6-b200``, ``p6e-gb200``), never by a
prefix of the name: ``p6e-gb200`` is arm64 (Grace) and the image is amd64.

Sources: the AWS instance-type pages (accelerators, "Instance store volumes", EFA-capable
sizes), botocore's documentation of ``ResourceConfig.VolumeKmsKeyId`` ("You can't request a
VolumeKmsKeyId when using an instance type with local storage"), and Paddle's install tables
(which CUDA build has kernels for which compute capability). See docs/sagemaker.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Optional, Tuple

from rectrain.errors import ConfigError

ALL = frozenset({"*"})
LARGE = frozenset({"8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge"})


@dataclass(frozen=True)
class Family:
    """One instance family. ``gpu_cc``: CUDA compute capability of its NVIDIA GPU (None: no
    NVIDIA GPU); ``accelerator``: ``nvidia``, ``neuron`` (Trainium) or None."""

    name: str
    accelerator: Optional[str] = None
    gpu: Optional[str] = None
    gpu_cc: Optional[Tuple[int, int]] = None
    arch: str = "x86_64"
    local_storage: bool = False
    efa_sizes: FrozenSet[str] = frozenset()


def _cpu(name: str, local: bool = False, efa: FrozenSet[str] = frozenset()) -> Family:
    return Family(name, local_storage=local, efa_sizes=efa)


def _gpu(name: str, gpu: str, cc: Tuple[int, int], *, local: bool, efa: FrozenSet[str],
         arch: str = "x86_64") -> Family:
    return Family(name, "nvidia", gpu, cc, arch, local, efa)


_TABLE: List[Family] = [
    # NVIDIA GPU families
    _gpu("p2", "K80", (3, 7), local=False, efa=frozenset()),
    _gpu("p3", "V100", (7, 0), local=False, efa=frozenset()),
    _gpu("p3dn", "V100", (7, 0), local=True, efa=frozenset({"24xlarge"})),
    _gpu("g4dn", "T4", (7, 5), local=True, efa=frozenset({"8xlarge", "12xlarge", "16xlarge"})),
    _gpu("g5", "A10G", (8, 6), local=True, efa=LARGE),
    _gpu("p4d", "A100", (8, 0), local=True, efa=ALL),
    _gpu("p4de", "A100 80GB", (8, 0), local=True, efa=ALL),
    _gpu("g6", "L4", (8, 9), local=True, efa=LARGE),
    _gpu("g6e", "L40S", (8, 9), local=True, efa=LARGE),
    _gpu("p5", "H100", (9, 0), local=True, efa=frozenset({"48xlarge"})),
    _gpu("p5e", "H200", (9, 0), local=True, efa=ALL),
    _gpu("p5en", "H200", (9, 0), local=True, efa=ALL),
    _gpu("p6-b200", "B200", (10, 0), local=True, efa=ALL),
    _gpu("p6-b300", "B300", (10, 3), local=True, efa=ALL),
    _gpu("p6e-gb200", "GB200", (10, 0), local=True, efa=ALL, arch="arm64"),
    _gpu("g7e", "RTX PRO 6000 Blackwell", (12, 0), local=True, efa=LARGE),
    _gpu("g7", "Blackwell (RTX PRO class)", (12, 0), local=True, efa=LARGE),
    # AWS Trainium (Neuron SDK, not CUDA)
    Family("trn1", "neuron", local_storage=True, efa_sizes=frozenset({"32xlarge"})),
    Family("trn1n", "neuron", local_storage=True, efa_sizes=ALL),
    Family("trn2", "neuron", local_storage=True, efa_sizes=ALL),
    # CPU families: EBS only, except the "d" families (local NVMe)
    _cpu("t3"), _cpu("m4"), _cpu("m5"), _cpu("c4"), _cpu("c5"),
    _cpu("c5n", efa=frozenset({"18xlarge"})),
    _cpu("r5"), _cpu("r5d", local=True),
    _cpu("m6i"), _cpu("c6i"), _cpu("r6i"),
    _cpu("m7i"), _cpu("c7i"), _cpu("r7i"), _cpu("m7i-flex"), _cpu("c7i-flex"),
    _cpu("m8i"), _cpu("c8i"), _cpu("r8i"), _cpu("m8i-flex"), _cpu("c8i-flex"), _cpu("r8i-flex"),
]
FAMILIES: Dict[str, Family] = {f.name: f for f in _TABLE}

# The image's CUDA builds (docker/Dockerfile build arguments, chosen by `rectrain sagemaker
# image`): the highest compute capability each has kernels for, and the lowest.
IMAGE_VARIANTS: Dict[str, Dict[str, object]] = {
    "cu118": {"cuda": "11.8", "min_cc": (6, 0), "max_cc": (8, 9)},
    "cu129": {"cuda": "12.9", "min_cc": (7, 5), "max_cc": (12, 0)},
}
DEFAULT_VARIANT = "cu118"
_TYPE_RE = re.compile(r"^ml\.([a-z0-9-]+)\.([a-z0-9]+)$")


def split_type(instance_type: str) -> Tuple[str, str]:
    """``ml.p6-b200.48xlarge`` -> (``p6-b200``, ``48xlarge``)."""
    m = _TYPE_RE.match(instance_type or "")
    if not m:
        raise ConfigError(f"instance type {instance_type!r} is not a SageMaker training instance type.",
                          "use a name like ml.g5.xlarge (see docs/sagemaker.md).")
    return m.group(1), m.group(2)


def family_of(instance_type: Optional[str]) -> Optional[Family]:
    """The family, or None for an empty or unknown type (never a guess from a prefix)."""
    if not instance_type:
        return None
    try:
        name, _ = split_type(instance_type)
    except ConfigError:
        return None
    return FAMILIES.get(name)


def is_gpu_instance(instance_type: Optional[str]) -> bool:
    fam = family_of(instance_type)
    return fam is not None and fam.accelerator == "nvidia"


def has_local_storage(instance_type: str) -> bool:
    """True when SageMaker mounts local NVMe instance storage (then ``VolumeKmsKeyId`` is
    refused). Unknown family: :class:`ConfigError` (fail closed)."""
    fam = family_of(instance_type)
    if fam is None:
        raise ConfigError(f"rectrain does not know whether {instance_type} has local instance storage, "
                          "so it cannot tell whether SageMaker accepts ResourceConfig.VolumeKmsKeyId.",
                          "use a listed instance type (docs/sagemaker.md) or update rectrain.")
    return fam.local_storage


def has_efa(instance_type: Optional[str]) -> bool:
    fam = family_of(instance_type)
    if fam is None or not instance_type:
        return False
    size = split_type(instance_type)[1]
    return "*" in fam.efa_sizes or size in fam.efa_sizes


def variant_for(instance_type: Optional[str]) -> str:
    """The image CUDA build an instance type needs: ``cu129`` for Hopper and newer, else
    ``cu118``."""
    fam = family_of(instance_type)
    if fam is not None and fam.gpu_cc is not None and fam.gpu_cc >= (9, 0):
        return "cu129"
    return DEFAULT_VARIANT


def variant_of_image(image: Optional[str]) -> Optional[str]:
    """The CUDA build named in an image tag (``rectrain:0.1.0-cu129``), or None."""
    tag = (image or "").rsplit("/", 1)[-1].partition(":")[2]
    for name in IMAGE_VARIANTS:
        if tag == name or tag.endswith("-" + name):
            return name
    return None


def runnable_problems(instance_type: str, image: Optional[str] = None) -> List[str]:
    """Why the rectrain image cannot run on ``instance_type`` (empty: it can). Each entry
    ends with its fix."""
    fam = family_of(instance_type)
    if fam is None:
        return [f"{instance_type} is not a family rectrain knows (GPU, architecture and storage "
                "unknown). Fix: use a listed instance type (docs/sagemaker.md) or update rectrain."]
    if fam.arch != "x86_64":
        return [f"{instance_type} is {fam.arch} ({fam.gpu or 'CPU'}); the rectrain image is linux/amd64. "
                "Fix: use an x86_64 type such as ml.p6-b200.48xlarge or ml.p5.48xlarge."]
    if fam.accelerator == "neuron":
        return [f"{instance_type} has AWS Trainium (Neuron) accelerators; PaddlePaddle needs NVIDIA GPUs. "
                "Fix: use a GPU type such as ml.g5.xlarge."]
    if fam.gpu_cc is None:
        return []
    variant = variant_of_image(image) if image else None
    need = variant_for(instance_type)
    spec = IMAGE_VARIANTS[variant or need]
    cc = ".".join(str(x) for x in fam.gpu_cc)
    if fam.gpu_cc < spec["min_cc"]:  # type: ignore[operator]
        return [f"{instance_type} has {fam.gpu} GPUs (compute capability {cc}), older than any CUDA "
                f"build of Paddle 3 supports. Fix: use ml.g4dn, ml.g5 or a newer GPU family."]
    if variant and fam.gpu_cc > spec["max_cc"]:  # type: ignore[operator]
        return [f"{instance_type} has {fam.gpu} GPUs (compute capability {cc}); the image {image} is the "
                f"CUDA {spec['cuda']} build, which has no kernels for them. Fix: build and push the "
                f"CUDA {IMAGE_VARIANTS[need]['cuda']} image with `rectrain sagemaker image "
                f"--instance-type {instance_type} --build --push` and launch with the URI it prints."]
    return []


@dataclass(frozen=True)
class InstanceType:
    """One instance type: vCPUs and memory as AWS publishes them for the instance (SageMaker runs
    one training container per instance with all of them), its GPUs, and the SageMaker training
    on-demand list price per instance-hour in us-east-1 (USD, late 2025; None: not listed)."""

    name: str
    vcpus: int
    memory_gib: int
    gpus: int
    usd_per_hour: Optional[float]

    @property
    def family(self) -> Optional[Family]:
        return family_of(self.name)

    @property
    def gpu(self) -> str:
        fam = self.family
        return (fam.gpu or "") if fam is not None else ""


PRICE_REGION = "us-east-1"
_TYPE_ROWS: List[InstanceType] = [
    InstanceType("ml.g4dn.xlarge", 4, 16, 1, 0.736),
    InstanceType("ml.g4dn.2xlarge", 8, 32, 1, 0.94),
    InstanceType("ml.g4dn.4xlarge", 16, 64, 1, 1.505),
    InstanceType("ml.g4dn.8xlarge", 32, 128, 1, 2.72),
    InstanceType("ml.g4dn.12xlarge", 48, 192, 4, 4.89),
    InstanceType("ml.g5.xlarge", 4, 16, 1, 1.408),
    InstanceType("ml.g5.2xlarge", 8, 32, 1, 1.515),
    InstanceType("ml.g5.4xlarge", 16, 64, 1, 2.03),
    InstanceType("ml.g5.8xlarge", 32, 128, 1, 3.06),
    InstanceType("ml.g5.12xlarge", 48, 192, 4, 7.09),
    InstanceType("ml.g5.48xlarge", 192, 768, 8, 20.36),
    InstanceType("ml.g6.xlarge", 4, 16, 1, 1.1616),
    InstanceType("ml.g6.2xlarge", 8, 32, 1, 1.2544),
    InstanceType("ml.g6.12xlarge", 48, 192, 4, 6.6784),
    InstanceType("ml.g6e.xlarge", 4, 32, 1, 2.3424),
    InstanceType("ml.p3.2xlarge", 8, 61, 1, 3.825),
    InstanceType("ml.p3.8xlarge", 32, 244, 4, 14.688),
    InstanceType("ml.p3.16xlarge", 64, 488, 8, 28.152),
    InstanceType("ml.p4d.24xlarge", 96, 1152, 8, 37.688),
    InstanceType("ml.p5.48xlarge", 192, 2048, 8, 113.068),
    InstanceType("ml.m5.xlarge", 4, 16, 0, 0.23),
    InstanceType("ml.m5.2xlarge", 8, 32, 0, 0.461),
    InstanceType("ml.c5.2xlarge", 8, 16, 0, 0.408),
]
TYPES: Dict[str, InstanceType] = {t.name: t for t in _TYPE_ROWS}


def gpu_types() -> List[InstanceType]:
    """The GPU instance types of the table, in its order."""
    return [t for t in _TYPE_ROWS if t.gpus > 0]


def price_per_hour(instance_type: str) -> Optional[float]:
    """The on-demand list price of ``instance_type`` (None: not in the table)."""
    found = TYPES.get(instance_type)
    return found.usd_per_hour if found is not None else None
