"""The fault proxy itself, with plain boto3 through it against the real SeaweedFS: it passes
traffic through untouched when off, and when on it cuts, answers S3 errors, stalls, hangs and
throttles as configured, switchable at run time, counted; a client that retries survives."""

from __future__ import annotations

import hashlib
import io
import os
import time
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from tests.faults.proxy import OFF, FaultPlan, FaultProxy, error_response

NETWORK_ERRORS = (ConnectionClosedError, EndpointConnectionError, ReadTimeoutError, ResponseStreamingError,
                  ConnectionError)


def _client(server: Any, endpoint: str, attempts: int = 1, read_timeout: float = 20) -> Any:
    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key, region_name="us-east-1",
        config=Config(retries={"total_max_attempts": attempts, "mode": "standard"}, connect_timeout=5,
                      read_timeout=read_timeout))


def test_off_passes_everything_through(s3_server: Any, s3_client: Any, s3_bucket: str,
                                       fault_proxy: FaultProxy) -> None:
    c = _client(s3_server, fault_proxy.endpoint_url)
    body = os.urandom(2 * 1024 * 1024 + 17)  # botocore sends Expect: 100-continue for it
    c.put_object(Bucket=s3_bucket, Key="a/big", Body=body)
    c.put_object(Bucket=s3_bucket, Key="a/empty", Body=b"")
    assert c.get_object(Bucket=s3_bucket, Key="a/big")["Body"].read() == body
    assert c.head_object(Bucket=s3_bucket, Key="a/empty")["ContentLength"] == 0
    keys = [o["Key"] for o in c.list_objects_v2(Bucket=s3_bucket, Prefix="a/")["Contents"]]
    assert keys == ["a/big", "a/empty"]
    c.delete_object(Bucket=s3_bucket, Key="a/empty")
    # what went through is what the server holds (read directly, not through the proxy)
    assert s3_client.get_object(Bucket=s3_bucket, Key="a/big")["Body"].read() == body
    stats = fault_proxy.stats()
    assert stats["requests"] == stats["forwarded"] == 6
    assert stats["bytes_up"] > len(body) and stats["bytes_down"] > len(body)
    assert not {"cuts", "error_503", "error_500", "stalls", "hangs"} & set(stats)


@pytest.mark.parametrize("status,code", [(503, "SlowDown"), (500, "InternalError")])
def test_injected_s3_errors_are_proper_s3_errors(s3_server: Any, s3_bucket: str,
                                                 fault_proxy: FaultProxy, status: int, code: str) -> None:
    c = _client(s3_server, fault_proxy.endpoint_url)
    fault_proxy.plan = FaultPlan(error_rate=1.0, error_statuses=(status,))
    with pytest.raises(ClientError) as put:
        c.put_object(Bucket=s3_bucket, Key="x", Body=b"data" * 1000)
    assert put.value.response["Error"]["Code"] == code  # botocore parsed the XML body
    assert put.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    with pytest.raises(ClientError) as head:  # HEAD: no body, the status alone
        c.head_object(Bucket=s3_bucket, Key="x")
    assert head.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert fault_proxy.stats()[f"error_{status}"] == 2 and "forwarded" not in fault_proxy.stats()
    assert not error_response(status, "HEAD").endswith(b"</Error>")
    fault_proxy.off()  # switched at run time: the same client goes through again
    c.put_object(Bucket=s3_bucket, Key="x", Body=b"data")


def test_a_retrying_client_survives_errors_and_cuts(s3_server: Any, s3_client: Any, s3_bucket: str,
                                                    fault_proxy: FaultProxy) -> None:
    c = _client(s3_server, fault_proxy.endpoint_url, attempts=25)
    fault_proxy.plan = FaultPlan(cut_mean_bytes=600_000, error_rate=0.2, error_statuses=(503, 500))
    bodies = {f"k{i}": os.urandom(400_000 + i) for i in range(12)}
    for key, body in bodies.items():
        c.put_object(Bucket=s3_bucket, Key=key, Body=body)
    stats = fault_proxy.stats()
    assert stats.get("cuts", 0) >= 2 and stats.get("error_503", 0) + stats.get("error_500", 0) >= 1, stats
    for key, body in bodies.items():  # every object whole, as the server holds it
        got = s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest()


def test_a_cut_reaches_a_client_that_does_not_retry(s3_server: Any, s3_bucket: str,
                                                    fault_proxy: FaultProxy) -> None:
    c = _client(s3_server, fault_proxy.endpoint_url)
    fault_proxy.plan = FaultPlan(cut_mean_bytes=50_000)
    failures = 0
    for i in range(5):
        try:
            c.put_object(Bucket=s3_bucket, Key=f"c{i}", Body=os.urandom(1_000_000))
        except NETWORK_ERRORS:
            failures += 1
    assert failures == 5 and fault_proxy.stats()["cuts"] == 5


def test_response_cuts_break_downloads_and_retries_recover(s3_server: Any, s3_client: Any, s3_bucket: str,
                                                           fault_proxy: FaultProxy) -> None:
    body = os.urandom(3_000_000)
    s3_client.put_object(Bucket=s3_bucket, Key="d", Body=body)
    fault_proxy.plan = FaultPlan(cut_response_mean_bytes=400_000)
    with pytest.raises(NETWORK_ERRORS):
        _client(s3_server, fault_proxy.endpoint_url).get_object(Bucket=s3_bucket, Key="d")["Body"].read()
    # s3transfer retries each part whose stream broke (in order: the proxy's seed decides)
    fault_proxy.plan = FaultPlan(cut_response_mean_bytes=600_000)
    out = io.BytesIO()
    parts = TransferConfig(multipart_threshold=256 * 1024, multipart_chunksize=256 * 1024,
                           max_concurrency=1, use_threads=False)
    patient = _client(s3_server, fault_proxy.endpoint_url, attempts=10)
    patient.download_fileobj(s3_bucket, "d", out, Config=parts)
    assert out.getvalue() == body and fault_proxy.stats()["cuts_response"] >= 3


def test_stall_and_hang_meet_the_clients_read_timeout(s3_server: Any, s3_bucket: str,
                                                      fault_proxy: FaultProxy) -> None:
    fault_proxy.plan = FaultPlan(stall_rate=1.0, stall_s=(3.0, 3.0))
    with pytest.raises(ReadTimeoutError):
        _client(s3_server, fault_proxy.endpoint_url, read_timeout=0.5).put_object(
            Bucket=s3_bucket, Key="s", Body=b"x")
    started = time.monotonic()  # a patient client waits the stall out
    patient = _client(s3_server, fault_proxy.endpoint_url, read_timeout=20)
    patient.put_object(Bucket=s3_bucket, Key="s", Body=b"x")
    assert time.monotonic() - started >= 2.9
    fault_proxy.plan = FaultPlan(hang_rate=1.0)
    with pytest.raises(ReadTimeoutError):
        _client(s3_server, fault_proxy.endpoint_url, read_timeout=0.5).head_object(Bucket=s3_bucket, Key="s")
    assert fault_proxy.stats()["hangs"] == 1 and fault_proxy.stats()["stalls"] == 2
    fault_proxy.plan = OFF
    assert patient.head_object(Bucket=s3_bucket, Key="s")["ContentLength"] == 1


def test_bandwidth_limit(s3_server: Any, s3_bucket: str, fault_proxy: FaultProxy) -> None:
    fault_proxy.plan = FaultPlan(bandwidth=1_000_000)
    started = time.monotonic()
    c = _client(s3_server, fault_proxy.endpoint_url)
    c.put_object(Bucket=s3_bucket, Key="b", Body=os.urandom(1_500_000))
    assert time.monotonic() - started >= 1.4  # 1.5 MB at 1 MB/s: a lower bound only


def test_the_seed_fixes_the_faults_of_a_sequential_client(s3_server: Any, s3_bucket: str) -> None:
    def cuts(seed: int) -> list:
        with FaultProxy(s3_server.endpoint_url, seed=seed) as proxy:
            proxy.plan = FaultPlan(cut_mean_bytes=300_000, error_rate=0.3)
            c = _client(s3_server, proxy.endpoint_url, attempts=1)
            outcome = []
            for i in range(15):
                try:
                    c.put_object(Bucket=s3_bucket, Key=f"s{i}", Body=b"z" * 100_000)
                    outcome.append("ok")
                except ClientError:
                    outcome.append("error")
                except NETWORK_ERRORS:
                    outcome.append("cut")
            return outcome

    first = cuts(11)
    assert first == cuts(11) and {"ok", "cut", "error"} <= set(first)
    assert first != cuts(12)


def test_down_resets_new_and_open_connections(s3_server: Any, s3_bucket: str,
                                              fault_proxy: FaultProxy) -> None:
    c = _client(s3_server, fault_proxy.endpoint_url)
    c.put_object(Bucket=s3_bucket, Key="u", Body=b"up")  # a kept-alive connection now exists
    fault_proxy.plan = FaultPlan(down=True)
    for _ in range(2):
        with pytest.raises(NETWORK_ERRORS):
            c.head_object(Bucket=s3_bucket, Key="u")
    assert fault_proxy.stats()["resets"] == 2
    fault_proxy.off()
    assert c.get_object(Bucket=s3_bucket, Key="u")["Body"].read() == b"up"
