"""The training image in Amazon ECR: the commands that build and push ``docker/Dockerfile``.

``rectrain sagemaker image`` prints them (copy, read, run); ``--build --push`` runs them.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from rectrain._version import __version__
from rectrain.errors import ConfigError, EngineFailure, EnvironmentProblem, UserError
from rectrain.logs import get_logger
from rectrain.machine.instances import DEFAULT_VARIANT, IMAGE_VARIANTS, runnable_problems, variant_for
from rectrain.sagemaker.aws import call
from rectrain.storage.service import bounded_config

log = get_logger("sagemaker.image")
DEFAULT_REPOSITORY = "rectrain"
# docker/Dockerfile build arguments per CUDA build (the cu118 ones are the Dockerfile's defaults)
BUILD_ARGS: Dict[str, Dict[str, str]] = {
    "cu118": {"CUDA_IMAGE": "nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04", "CUDA_VERSION": "11.8",
              "PADDLE_INDEX": "https://www.paddlepaddle.org.cn/packages/stable/cu118/"},
    "cu129": {"CUDA_IMAGE": "nvidia/cuda:12.9.1-cudnn-runtime-ubuntu22.04", "CUDA_VERSION": "12.9",
              "PADDLE_INDEX": "https://www.paddlepaddle.org.cn/packages/stable/cu129/"},
}


@dataclass
class ImagePlan:
    account: str
    region: str
    repository: str
    tag: str
    dockerfile: str
    context: str
    variant: str = DEFAULT_VARIANT

    @property
    def registry(self) -> str:
        suffix = ".amazonaws.com.cn" if self.region.startswith("cn-") else ".amazonaws.com"
        return f"{self.account}.dkr.ecr.{self.region}{suffix}"

    @property
    def uri(self) -> str:
        return f"{self.registry}/{self.repository}:{self.tag}"

    def build_argv(self) -> List[str]:
        args: List[str] = []
        for key, value in BUILD_ARGS[self.variant].items():
            args += ["--build-arg", f"{key}={value}"]
        return ["docker", "build", "--platform", "linux/amd64", *args, "-f", self.dockerfile,
                "-t", self.uri, self.context]

    def push_argv(self) -> List[str]:
        return ["docker", "push", self.uri]

    def commands(self) -> List[str]:
        """Shell lines, in order: repository, login, build, push."""
        q = shlex.quote
        return [
            f"aws ecr describe-repositories --region {q(self.region)} --repository-names "
            f"{q(self.repository)} >/dev/null 2>&1 || aws ecr create-repository --region "
            f"{q(self.region)} --repository-name {q(self.repository)} "
            "--image-scanning-configuration scanOnPush=true",
            f"aws ecr get-login-password --region {q(self.region)} | docker login --username AWS "
            f"--password-stdin {q(self.registry)}",
            " ".join(q(a) for a in self.build_argv()),
            " ".join(q(a) for a in self.push_argv()),
        ]


def default_context() -> str:
    """The repository root (holds docker/Dockerfile and src/), when run from a checkout."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "docker" / "Dockerfile").is_file() and (parent / "pyproject.toml").is_file():
            return str(parent)
    return "."


def choose_variant(instance_type: Optional[str] = None, cuda: Optional[str] = None) -> str:
    """The CUDA build: ``cuda`` when given (``cu118``/``cu129``), else the one the instance type
    needs (Hopper and newer: CUDA 12.9), else CUDA 11.8."""
    if cuda:
        if cuda not in IMAGE_VARIANTS:
            raise ConfigError(f"--cuda {cuda!r} is not a build of the image.",
                              f"use one of {', '.join(IMAGE_VARIANTS)}.")
        if instance_type:
            problems = runnable_problems(instance_type, f"x:{__version__}-{cuda}")
            if problems:
                message, _, fix = problems[0].partition(" Fix: ")
                raise ConfigError(message, fix)
        return cuda
    if instance_type:
        problems = runnable_problems(instance_type)
        if problems:
            message, _, fix = problems[0].partition(" Fix: ")
            raise ConfigError(message, fix)
        return variant_for(instance_type)
    return DEFAULT_VARIANT


def plan_image(*, account: Optional[str] = None, region: Optional[str] = None,
               repository: str = DEFAULT_REPOSITORY, tag: Optional[str] = None,
               context: Optional[str] = None, sts_client: Any = None,
               instance_type: Optional[str] = None, cuda: Optional[str] = None) -> ImagePlan:
    """Where the image goes and which CUDA build it is (from ``instance_type``, or ``cuda``).
    The tag ends in the build (``0.1.0-cu129``) so that ``launch`` can check it against the
    instance type. The account comes from ``sts get-caller-identity`` when not given
    (``<account>`` when there are no credentials, for printing)."""
    variant = choose_variant(instance_type, cuda)
    if not region:
        import boto3

        region = boto3.Session().region_name
    if not region:
        raise EnvironmentProblem("no AWS region for the ECR repository.",
                                 "pass --region us-east-1 (or set AWS_DEFAULT_REGION).")
    if not account:
        try:
            if sts_client is None:
                import boto3

                sts_client = boto3.client("sts", region_name=region, config=bounded_config())
            account = sts_client.get_caller_identity()["Account"]
        except Exception:  # noqa: BLE001 - printing works without credentials
            account = "<account>"
    ctx = context or default_context()
    tag = tag or __version__
    if not tag.endswith("-" + variant):
        tag = f"{tag}-{variant}"
    return ImagePlan(account=str(account), region=region, repository=repository,
                     tag=tag, dockerfile=str(Path(ctx) / "docker" / "Dockerfile"),
                     context=ctx, variant=variant)


def _run(argv: List[str], input_text: Optional[str] = None) -> None:
    shown = " ".join(shlex.quote(a) for a in argv)
    log.info("$ %s", shown)
    proc = subprocess.run(argv, input=input_text, text=True)
    if proc.returncode != 0:
        raise EngineFailure(f"`{shown}` failed with exit code {proc.returncode}.",
                            "read the output above (docker running? logged in? disk space?).",
                            kind="docker")


def build_and_push(plan: ImagePlan, *, build: bool = True, push: bool = True, ecr_client: Any = None) -> str:
    """Run the build and/or push; returns the image URI."""
    if shutil.which("docker") is None:
        raise EnvironmentProblem("docker is not installed or not on PATH.",
                                 "install Docker (or build on a machine that has it) and rerun.")
    if plan.account.startswith("<"):
        raise EnvironmentProblem("the AWS account is unknown (no credentials?).",
                                 "run `aws configure`, or pass --account 123456789012.")
    if not Path(plan.dockerfile).is_file():
        raise UserError(f"{plan.dockerfile} not found.", "run from a rectrain checkout or pass --context.")
    if build:
        _run(plan.build_argv())
    if push:
        import base64

        import boto3

        ecr = ecr_client or boto3.client("ecr", region_name=plan.region, config=bounded_config())
        try:
            ecr.describe_repositories(repositoryNames=[plan.repository])
        except ecr.exceptions.RepositoryNotFoundException:
            ecr.create_repository(repositoryName=plan.repository,
                                  imageScanningConfiguration={"scanOnPush": True})
        token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        user, password = base64.b64decode(token).decode().split(":", 1)
        _run(["docker", "login", "--username", user, "--password-stdin", plan.registry], password)
        _run(plan.push_argv())
    return plan.uri


# ------------------------------------------------------------------ the image's own CUDA label
CUDA_LABEL = "com.rectrain.cuda"  # docker/Dockerfile: LABEL com.rectrain.cuda="${CUDA_VERSION}"
MANIFEST_TYPES = ["application/vnd.docker.distribution.manifest.v2+json",
                  "application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.list.v2+json",
                  "application/vnd.oci.image.index.v1+json"]
_ECR_URI_RE = re.compile(r"^(?P<account>[0-9]{12})\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/"
                         r"(?P<repo>[a-z0-9][a-z0-9._/-]*?)(:(?P<tag>[A-Za-z0-9_.-]+))?"
                         r"(@(?P<digest>sha256:[0-9a-f]{64}))?$")


def image_cuda_label(image: str, ecr: Any, *, fetch: Any = None, timeout: float = 30.0) -> Optional[str]:
    """The CUDA build the image itself records (its config's ``com.rectrain.cuda`` label), read
    from ECR without pulling it: ``BatchGetImage`` (the manifest; for a multi-platform index the
    linux/amd64 one), ``GetDownloadUrlForLayer`` for the config blob, one HTTPS GET, the blob
    checked against its sha256 digest. None: the image has no such label (not built from
    docker/Dockerfile). Raises :class:`UserError` when ECR cannot be read (with the fix)."""
    import hashlib
    import json

    m = _ECR_URI_RE.match(image)
    if not m:
        raise ConfigError(f"{image} is not an ECR image URI rectrain can read.",
                          "pass --image-cuda 11.8|12.9 to say which CUDA build it is.")
    ids = {"registryId": m.group("account"), "repositoryName": m.group("repo")}
    ref = ({"imageDigest": m.group("digest")} if m.group("digest")
           else {"imageTag": m.group("tag") or "latest"})
    manifest = _manifest(ecr, ids, ref, image)
    if "manifests" in manifest:  # a multi-platform index: the amd64 image (the one SageMaker runs)
        chosen = [x for x in manifest["manifests"] if (x.get("platform") or {}).get("architecture") == "amd64"
                  and (x.get("platform") or {}).get("os") == "linux"]
        if not chosen:
            raise UserError(f"{image} has no linux/amd64 image in its index.",
                            "build it for linux/amd64 (`rectrain sagemaker image --build`).")
        manifest = _manifest(ecr, ids, {"imageDigest": chosen[0]["digest"]}, image)
    digest = str((manifest.get("config") or {}).get("digest", ""))
    if not digest.startswith("sha256:"):
        raise UserError(f"{image}: its manifest names no image config.", "push the image again.")
    url = call(ecr.get_download_url_for_layer, "ecr:GetDownloadUrlForLayer", image,
                    layerDigest=digest, **ids)["downloadUrl"]
    body = (fetch or _https_get)(url, timeout)
    if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
        raise UserError(f"{image}: the image config downloaded from ECR does not match its digest {digest}.",
                        "try again; if it persists, push the image again.")
    labels = (json.loads(body.decode("utf-8")).get("config") or {}).get("Labels") or {}
    value = labels.get(CUDA_LABEL)
    return str(value) if value else None


def _manifest(ecr: Any, ids: Dict[str, str], ref: Dict[str, str], image: str) -> Dict[str, Any]:
    import json

    got = call(ecr.batch_get_image, "ecr:BatchGetImage", image, imageIds=[ref],
                    acceptedMediaTypes=MANIFEST_TYPES, **ids)
    if not got.get("images"):
        why = "; ".join(f"{f.get('failureCode')}: {f.get('failureReason')}" for f in got.get("failures", []))
        raise UserError(f"{image} is not in ECR ({why or 'no image'}).",
                        "push it first (`rectrain sagemaker image --build --push`) or fix --image.")
    return dict(json.loads(got["images"][0]["imageManifest"]))


def _https_get(url: str, timeout: float) -> bytes:
    import urllib.request

    if not url.startswith(("https://", "http://")):
        raise UserError(f"ECR gave a download URL rectrain will not open: {url[:60]}", "report it.")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - checked above
            return bytes(resp.read(16 * 2**20))  # an image config is kilobytes
    except OSError as exc:
        raise EnvironmentProblem(f"could not download the image config from ECR ({exc}).",
                                 "check the network, or pass --image-cuda 11.8|12.9.") from exc
