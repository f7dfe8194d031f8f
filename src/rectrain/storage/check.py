"""Permission preflight: can this identity train from and to ``s3://bucket/prefix``?

One line per check: credentials, identity (STS, where the endpoint has it), region, bucket,
then List / Get / Put / Delete on the prefix, tested for real with a probe object that is
removed again. Each failure comes with the IAM policy statement that would fix it. Training
needs List, Get and Put (datasets in, checkpoints out); Delete is needed for ``--delete`` and
for replacing a dataset's manifest.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from rectrain.errors import PermissionProblem
from rectrain.storage.aws_errors import error_code, iam_statement, translate_error
from rectrain.storage.objects import PROBE_PREFIX
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import S3Service

OK, FAIL, WARN, INFO = "ok", "fail", "warn", "info"


@dataclass
class CheckLine:
    name: str
    status: str  # ok / fail / warn / info
    detail: str
    fix: str = ""
    policy: Optional[Dict[str, Any]] = None
    required: bool = True

    def render(self) -> str:
        mark = {OK: "OK  ", FAIL: "FAIL", WARN: "WARN", INFO: "--  "}[self.status]
        text = f"{mark} {self.name:<12} {self.detail}"
        if self.fix:
            text += f"\n     fix: {self.fix}"
        if self.policy:
            text += "\n     IAM statement: " + json.dumps(self.policy)
        return text


@dataclass
class CheckReport:
    uri: str
    endpoint: str
    lines: List[CheckLine] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(line.status == FAIL and line.required for line in self.lines)

    @property
    def missing(self) -> List[str]:
        return [line.name for line in self.lines if line.status == FAIL]

    def add(self, *args: Any, **kwargs: Any) -> CheckLine:
        line = CheckLine(*args, **kwargs)
        self.lines.append(line)
        return line

    def render(self) -> str:
        head = f"S3 check for {self.uri} (endpoint: {self.endpoint or 'AWS default'})"
        body = "\n".join(line.render() for line in self.lines)
        verdict = (
            "everything training needs is allowed."
            if self.ok
            else "missing: " + ", ".join(self.missing) + " (see the IAM statements above)."
        )
        return f"{head}\n{body}\nresult: {verdict}"

    def to_dict(self) -> Dict[str, Any]:
        return {
            "uri": self.uri,
            "endpoint": self.endpoint,
            "ok": self.ok,
            "missing": self.missing,
            "checks": [asdict(line) for line in self.lines],
        }


def _fail(
    report: CheckReport, name: str, exc: BaseException, action: str, resource: str, required: bool = True
) -> None:
    err = translate_error(exc, action, resource)
    if isinstance(err, PermissionProblem):
        report.add(
            name,
            FAIL,
            f"{action} denied on {resource}",
            "add the IAM statement below to the identity's policy.",
            iam_statement(action, resource),
            required,
        )
    else:
        report.add(name, FAIL, err.message, err.fix or "", None, required)


def check_s3_access(s3: S3Service, uri: S3Uri) -> CheckReport:
    """Run every check and return the report (``report.ok`` is False when training would fail).
    The requests use ``s3``'s endpoint and credentials with short timeouts and two attempts: a
    preflight answers in seconds (S3Options' bounded waits, never longer ones)."""
    quick = s3.with_options(max_attempts=2, retry_budget_s=30)
    client = quick.client
    retry = quick.retry.run  # a cut connection or a 503 is retried, a refusal is not
    endpoint = quick.resolved_endpoint
    report = CheckReport(str(uri), endpoint)
    resource = str(uri)

    creds = client._request_signer._credentials  # noqa: SLF001 - the credentials the client signs with
    if creds is None:
        report.add(
            "credentials",
            FAIL,
            "no AWS credentials found",
            "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, use --profile, or run `aws configure` "
            "(the embedded server: `rectrain s3 serve` prints them).",
        )
        return report
    method = getattr(creds, "method", "") or "configured"
    key = getattr(creds, "access_key", "") or ""
    shown = (key[:4] + "..." + key[-2:]) if len(key) > 8 else "***"
    report.add("credentials", OK, f"access key {shown} (from {method})")

    _identity(report, client, endpoint)
    region = client.meta.region_name
    bucket_region = None
    bucket_line: CheckLine
    try:
        head = retry(lambda: client.head_bucket(Bucket=uri.bucket), "s3:HeadBucket")
        bucket_region = (head.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}).get(
            "x-amz-bucket-region"
        )
        bucket_line = CheckLine("bucket", OK, f"{uri.bucket} exists")
    except Exception as exc:  # noqa: BLE001
        code = error_code(exc)
        if code in ("404", "NoSuchBucket", "NotFound"):
            bucket_line = CheckLine(
                "bucket",
                FAIL,
                f"{uri.bucket} does not exist",
                f"create it (aws s3 mb s3://{uri.bucket}) or fix the name.",
            )
        elif code in ("403", "AccessDenied"):
            bucket_line = CheckLine(
                "bucket",
                WARN,
                f"{uri.bucket}: HeadBucket denied (it exists; its region cannot be read)",
                required=False,
            )
        else:
            err = translate_error(exc, "s3:ListBucket", f"s3://{uri.bucket}")
            bucket_line = CheckLine("bucket", FAIL, err.message, err.fix or "")
    if bucket_region and bucket_region != region:
        report.add(
            "region",
            WARN,
            f"client region {region}, the bucket is in {bucket_region}",
            f"set AWS_DEFAULT_REGION={bucket_region} (or --region).",
            required=False,
        )
    else:
        report.add(
            "region", OK, region + (f" (bucket: {bucket_region})" if bucket_region else ""), required=False
        )
    report.lines.append(bucket_line)
    if bucket_line.status == FAIL:
        return report

    # List
    sample_key = None
    try:
        listing = retry(lambda: client.list_objects_v2(Bucket=uri.bucket, Prefix=uri.prefix, MaxKeys=5),
                        "s3:ListBucket")
        count = listing.get("KeyCount", 0)
        for obj in listing.get("Contents", []) or []:
            if not obj["Key"].rsplit("/", 1)[-1].startswith(PROBE_PREFIX):
                sample_key = obj["Key"]
                break
        report.add("list", OK, f"s3:ListBucket on {resource} ({'empty' if not count else 'has objects'})")
    except Exception as exc:  # noqa: BLE001
        _fail(report, "list", exc, "s3:ListBucket", resource)

    probe = f"{uri.prefix}{PROBE_PREFIX}{uuid.uuid4().hex[:12]}"
    put_ok = False
    try:
        retry(lambda: client.put_object(Bucket=uri.bucket, Key=probe, Body=b"rectrain permission probe\n"),
              "s3:PutObject")
        put_ok = True
        report.add("put", OK, f"s3:PutObject on {resource}")
    except Exception as exc:  # noqa: BLE001
        _fail(report, "put", exc, "s3:PutObject", resource)

    get_key = probe if put_ok else sample_key
    if get_key is None:
        report.add(
            "get",
            WARN,
            "s3:GetObject not tested (nothing to read under the prefix and no write permission)",
            required=False,
        )
    else:
        try:
            retry(lambda: client.get_object(Bucket=uri.bucket, Key=get_key)["Body"].read(), "s3:GetObject")
            report.add("get", OK, f"s3:GetObject on {resource}")
        except Exception as exc:  # noqa: BLE001
            _fail(report, "get", exc, "s3:GetObject", resource)

    # Delete: the probe if it was written, else a key that does not exist (S3 checks the permission first)
    try:
        retry(lambda: client.delete_object(Bucket=uri.bucket, Key=probe), "s3:DeleteObject")
        report.add("delete", OK, f"s3:DeleteObject on {resource}" + (" (probe removed)" if put_ok else ""))
    except Exception as exc:  # noqa: BLE001
        _fail(report, "delete", exc, "s3:DeleteObject", resource)
        if put_ok:
            report.lines[-1].detail += f"; the probe s3://{uri.bucket}/{probe} (empty) is left behind"
    return report


def _identity(report: CheckReport, client: Any, endpoint: str) -> None:
    try:
        import boto3

        creds = client._request_signer._credentials.get_frozen_credentials()  # noqa: SLF001
        kwargs: Dict[str, Any] = {
            "region_name": client.meta.region_name,
            "aws_access_key_id": creds.access_key,
            "aws_secret_access_key": creds.secret_key,
            "aws_session_token": creds.token,
        }
        if endpoint and "amazonaws.com" not in endpoint:
            kwargs["endpoint_url"] = endpoint
        from botocore.config import Config

        sts = boto3.session.Session().client(
            "sts", config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=10), **kwargs
        )
        who = sts.get_caller_identity()
        report.add(
            "identity", OK, f"{who.get('Arn', '?')} (account {who.get('Account', '?')})", required=False
        )
    except Exception as exc:  # noqa: BLE001 - STS is optional
        code = error_code(exc)
        if code in ("ExpiredToken", "InvalidClientTokenId", "SignatureDoesNotMatch"):
            err = translate_error(exc, "sts:GetCallerIdentity", "identity")
            report.add("identity", FAIL, err.message, err.fix or "")
        else:
            report.add(
                "identity",
                INFO,
                "not available on this endpoint (STS GetCallerIdentity failed)",
                required=False,
            )
