"""The training image in Amazon ECR: the commands that build and push ``docker/Dockerfile``.

``rectrain sagemaker image`` prints them (copy, read, run); ``--build --push`` runs them.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional

from rectrain._version import __version__
from rectrain.errors import EngineFailure, EnvironmentProblem, UserError
from rectrain.logs import get_logger

log = get_logger("sagemaker.image")
DEFAULT_REPOSITORY = "rectrain"


@dataclass
class ImagePlan:
    account: str
    region: str
    repository: str
    tag: str
    dockerfile: str
    context: str

    @property
    def registry(self) -> str:
        suffix = ".amazonaws.com.cn" if self.region.startswith("cn-") else ".amazonaws.com"
        return f"{self.account}.dkr.ecr.{self.region}{suffix}"

    @property
    def uri(self) -> str:
        return f"{self.registry}/{self.repository}:{self.tag}"

    def build_argv(self) -> List[str]:
        return ["docker", "build", "--platform", "linux/amd64", "-f", self.dockerfile,
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


def plan_image(*, account: Optional[str] = None, region: Optional[str] = None,
               repository: str = DEFAULT_REPOSITORY, tag: Optional[str] = None,
               context: Optional[str] = None, sts_client: Any = None) -> ImagePlan:
    """Where the image goes. The account comes from ``sts get-caller-identity`` when not given
    (``<account>`` when there are no credentials, for printing)."""
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

                sts_client = boto3.client("sts", region_name=region)
            account = sts_client.get_caller_identity()["Account"]
        except Exception:  # noqa: BLE001 - printing works without credentials
            account = "<account>"
    ctx = context or default_context()
    return ImagePlan(account=str(account), region=region, repository=repository,
                     tag=tag or __version__, dockerfile=str(Path(ctx) / "docker" / "Dockerfile"),
                     context=ctx)


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

        ecr = ecr_client or boto3.client("ecr", region_name=plan.region)
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
