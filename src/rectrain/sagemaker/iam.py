"""The IAM permission policy of one job's role, scoped to that job's S3 prefixes (issue 25).

Whoever can write a checkpoint prefix decides what the next resume loads (rectrain refuses
code in pickles and names that are paths, but not weights that were swapped for other
weights: docs/security.md). One role per job (or per run that resumes) with this policy keeps
every other job's role, and every other job, out of that prefix: inputs are read-only, only
this job's output and checkpoint prefixes are writable. Pure data: printed by ``rectrain
sagemaker policy``, tested without AWS.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

from rectrain.sagemaker.jobconfig import JobConfig
from rectrain.storage.s3 import S3Uri


def _arn(uri: S3Uri, suffix: str = "") -> str:
    return f"arn:aws:s3:::{uri.bucket}/{uri.key.rstrip('/')}{suffix}"


def _inputs(job: JobConfig) -> List[S3Uri]:
    given = [job.train, job.val, *job.channels.values()]
    if job.training.pretrained and str(job.training.pretrained).startswith("s3://"):
        given.append(job.training.pretrained)
    return [S3Uri.parse(u) for u in given if u]


def role_policy(job: JobConfig, name: Optional[str] = None) -> Dict[str, Any]:
    """The permission policy (JSON) for the role of job ``name`` (default: every job of this
    job config, ``<name>-*``): read its inputs, write its output and checkpoints, nothing
    else in S3; plus the image, logs and metrics a training job needs."""
    base = re.sub(r"[^a-zA-Z0-9-]+", "-", job.name).strip("-") or "rectrain"
    jobs = name or f"{base}-*"
    output = S3Uri.parse(str(job.output)) if job.output else None
    writable: List[str] = []
    if output is not None:
        writable.append(_arn(output, f"/{jobs}/*"))
    if job.checkpoint_s3:
        writable.append(_arn(S3Uri.parse(job.checkpoint_s3), "/*"))
    inputs = _inputs(job)
    listed: Dict[str, List[str]] = {}
    for uri in inputs + ([S3Uri.parse(job.checkpoint_s3)] if job.checkpoint_s3 else []):
        listed.setdefault(uri.bucket, []).append(uri.key.rstrip("/") + "/*")
    if output is not None:
        listed.setdefault(output.bucket, []).append(f"{output.key.rstrip('/')}/{jobs}")
    statements: List[Dict[str, Any]] = []
    if inputs:
        statements.append({"Sid": "ReadInputs", "Effect": "Allow", "Action": ["s3:GetObject"],
                           "Resource": sorted({_arn(u, "/*") for u in inputs})})
    if writable:
        statements.append({"Sid": "WriteThisJobsOutputAndCheckpoints", "Effect": "Allow",
                           "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                                      "s3:AbortMultipartUpload"],
                           "Resource": writable})
    for i, (bucket, prefixes) in enumerate(sorted(listed.items())):
        statements.append({"Sid": f"ListTheseFolders{i}", "Effect": "Allow",
                           "Action": ["s3:ListBucket"], "Resource": f"arn:aws:s3:::{bucket}",
                           "Condition": {"StringLike": {"s3:prefix": sorted(set(prefixes))}}})
    statements += [
        {"Sid": "PullImage", "Effect": "Allow",
         "Action": ["ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage",
                    "ecr:BatchCheckLayerAvailability"], "Resource": _repository(job.image)},
        {"Sid": "EcrToken", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {"Sid": "Logs", "Effect": "Allow",
         "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                    "logs:DescribeLogStreams"],
         "Resource": "arn:aws:logs:*:*:log-group:/aws/sagemaker/TrainingJobs*"},
        {"Sid": "Metrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"},
    ]
    if job.kms_key:
        statements.append({"Sid": "Kms", "Effect": "Allow",
                           "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey",
                                      "kms:CreateGrant", "kms:DescribeKey"],
                           "Resource": job.kms_key})
    return {"Version": "2012-10-17", "Statement": statements}


def _repository(image: Optional[str]) -> str:
    """``arn:aws:ecr:<region>:<account>:repository/<name>`` of an ECR image URI."""
    m = re.match(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([^:@]+)", image or "")
    if not m:
        return "arn:aws:ecr:*:*:repository/rectrain"
    return f"arn:aws:ecr:{m.group(2)}:{m.group(1)}:repository/{m.group(3)}"
