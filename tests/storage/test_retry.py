"""Transient S3 failures are retried within a time budget, in one place (the S3Service's
RetryPolicy): through a real fault-injecting proxy in front of SeaweedFS, uploads and downloads
survive cut connections and 503 SlowDown answers; a download cut short is retried, never taken
for a damaged object; an endpoint that stays down ends in an error quickly, and the next
operation fails at once instead of waiting out another budget."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from rectrain.errors import IntegrityError, StorageError
from rectrain.storage.objects import download_file, list_objects, upload_file
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import RetryPolicy, S3Service, is_transient
from tests.faults.proxy import FaultPlan, FaultProxy


@pytest.fixture
def proxy(s3_server: Any) -> Iterator[FaultProxy]:
    with FaultProxy(s3_server.endpoint_url, seed=11) as p:
        yield p


def _service(s3_server: Any, proxy: FaultProxy, budget: float, **options: Any) -> S3Service:
    return S3Service(proxy.endpoint_url, access_key=s3_server.access_key, secret_key=s3_server.secret_key,
                     region="us-east-1", retry_budget_s=budget, connect_timeout=2, read_timeout=10, **options)


@pytest.mark.parametrize("fastpath", [True, False])
def test_cuts_and_slowdowns_are_absorbed(s3_server: Any, s3_bucket: str, proxy: FaultProxy,
                                         tmp_path: Path, fastpath: bool) -> None:
    s3 = _service(s3_server, proxy, 60, fastpath=fastpath, max_attempts=1)
    data = os.urandom(1024 * 1024)
    (tmp_path / "a.bin").write_bytes(data)
    proxy.plan = FaultPlan(cut_mean_bytes=1.5e6, cut_response_mean_bytes=1.5e6, error_rate=0.2,
                           error_statuses=(503, 500))
    for i in range(4):
        uri = S3Uri(s3_bucket, f"r/{i}.bin")
        upload_file(s3, tmp_path / "a.bin", uri)
        download_file(s3, uri, tmp_path / f"back{i}.bin")
        assert (tmp_path / f"back{i}.bin").read_bytes() == data
    assert len(list_objects(s3, S3Uri(s3_bucket, "r"))) == 4
    stats = proxy.stats()
    assert stats.get("cuts", 0) + stats.get("cuts_response", 0) >= 2, stats  # the network was bad
    assert s3.retry.retries >= 2


def test_persistent_failure_ends_quickly_and_then_fails_fast(s3_server: Any, s3_bucket: str,
                                                             proxy: FaultProxy, tmp_path: Path) -> None:
    s3 = _service(s3_server, proxy, 3, max_attempts=1, fastpath=False)
    (tmp_path / "a.bin").write_bytes(b"x" * 1000)
    proxy.plan = FaultPlan(down=True)
    started = time.monotonic()
    with pytest.raises(StorageError):
        upload_file(s3, tmp_path / "a.bin", S3Uri(s3_bucket, "down/a.bin"))
    assert time.monotonic() - started < 60  # retried within the budget, not forever
    retried = s3.retry.retries
    assert retried >= 1
    with pytest.raises(StorageError):
        upload_file(s3, tmp_path / "a.bin", S3Uri(s3_bucket, "down/b.bin"))
    assert s3.retry.retries == retried, "the second operation waited out another budget"
    proxy.off()  # the endpoint is back: one success resets the policy
    upload_file(s3, tmp_path / "a.bin", S3Uri(s3_bucket, "down/c.bin"))


def test_a_refusal_or_a_damaged_object_is_not_retried(s3_server: Any, s3_bucket: str, s3_client: Any,
                                                      tmp_path: Path) -> None:
    s3 = s3_server.service(retry_budget_s=30)
    started = time.monotonic()
    with pytest.raises(StorageError):  # 404: not transient
        download_file(s3, S3Uri(s3_bucket, "nothing-here"), tmp_path / "x")
    s3_client.put_object(Bucket=s3_bucket, Key="k", Body=b"abc")
    with pytest.raises(IntegrityError):
        download_file(s3, S3Uri(s3_bucket, "k"), tmp_path / "y", expected_sha256="0" * 64)
    assert time.monotonic() - started < 10
    assert s3.retry.retries == 0


def test_transient_is_decided_by_kind() -> None:
    from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

    def client_error(code: str, status: int) -> ClientError:
        return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
                           "PutObject")

    assert is_transient(client_error("SlowDown", 503))
    assert is_transient(client_error("InternalError", 500))
    assert is_transient(ConnectionClosedError(endpoint_url="http://x"))
    assert is_transient(ReadTimeoutError(endpoint_url="http://x"))
    assert is_transient(ConnectionResetError())
    wrapped = StorageError("broke", "rerun")
    wrapped.__cause__ = ConnectionClosedError(endpoint_url="http://x")
    assert is_transient(wrapped)
    assert not is_transient(client_error("AccessDenied", 403))
    assert not is_transient(client_error("NoSuchKey", 404))
    assert not is_transient(OSError(28, "No space left on device"))
    assert not is_transient(IntegrityError("damaged", "pull again"))


def test_retry_policy_budget_and_backoff() -> None:
    calls = []

    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 4:
            raise ConnectionResetError("reset")
        return "ok"

    policy = RetryPolicy(budget_s=20, base_s=0.01, cap_s=0.05)
    assert policy.run(flaky) == "ok" and policy.retries == 3

    def always() -> None:
        raise ConnectionResetError("reset")

    policy = RetryPolicy(budget_s=0.5, base_s=0.01, cap_s=0.05)
    started = time.monotonic()
    with pytest.raises(ConnectionResetError):
        policy.run(always)
    assert time.monotonic() - started < 2
