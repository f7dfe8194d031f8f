"""The small-object fast path: the client's TLS settings, off after repeated network
failures, off on request. (Its speed is measured in benchmarks/bench_s3.py.)"""

from __future__ import annotations

import argparse
import ssl
from pathlib import Path

import boto3
import pytest

from rectrain.storage.fastpath import NET_FAILURES_OFF, FastPath, client_ssl_context
from rectrain.storage.s3 import S3Uri


def _client(endpoint: str, **kwargs) -> object:  # noqa: ANN003
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="secret", **kwargs)


def test_tls_follows_the_clients_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    off = client_ssl_context(_client("https://127.0.0.1:1", verify=False))
    assert off.verify_mode == ssl.CERT_NONE and not off.check_hostname
    default = client_ssl_context(_client("https://127.0.0.1:1"))
    assert default.verify_mode == ssl.CERT_REQUIRED and default.check_hostname
    # AWS_CA_BUNDLE (what the client uses) is what the fast path trusts: a bundle that
    # does not exist is an error, not silently the default bundle
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises((FileNotFoundError, ssl.SSLError, OSError)):
        client_ssl_context(_client("https://127.0.0.1:1"))
    import certifi

    monkeypatch.setenv("AWS_CA_BUNDLE", certifi.where())
    ctx = client_ssl_context(_client("https://127.0.0.1:1"))
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.cert_store_stats()["x509_ca"] > 10


def test_off_after_repeated_network_failures_and_on_request() -> None:
    fast = FastPath(_client("http://127.0.0.1:9"), attempts=1)  # nothing listens on port 9
    assert fast.enabled
    for _ in range(NET_FAILURES_OFF):
        assert fast.put("b", "k", b"data", "00" * 32, "AA==") is False  # the client takes over
    assert not fast.enabled and fast.net_failures == NET_FAILURES_OFF
    # off on request: the service makes none (`rectrain s3 push|pull --no-fastpath`, and
    # RECTRAIN_NO_FASTPATH=1 read into the settings by the CLI)
    from rectrain.cli.edge import s3_service
    from rectrain.settings import Settings
    from rectrain.storage.service import S3Service

    assert S3Service("http://127.0.0.1:9").fast_path() is not None
    assert S3Service("http://127.0.0.1:9", fastpath=False).fast_path() is None
    flag = argparse.Namespace(endpoint_url="http://127.0.0.1:9", no_fastpath=True,
                              settings=Settings())
    assert s3_service(flag).fast_path() is None
    env = argparse.Namespace(endpoint_url="http://127.0.0.1:9", no_fastpath=False,
                             settings=Settings.from_env({"RECTRAIN_NO_FASTPATH": "1"}))
    assert s3_service(env).fast_path() is None
    env.settings = Settings.from_env({})
    assert s3_service(env).fast_path() is not None


def test_a_large_object_goes_up_in_parallel_parts(s3_server, s3_client, s3_bucket, tmp_path: Path) -> None:  # noqa: ANN001
    import hashlib
    import os
    import threading

    from rectrain.storage.objects import download_file, upload_file

    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(20 * 1024 * 1024))  # 20 MB: 3 parts of 8 MB
    threads = set()
    s3 = s3_server.service()  # its own client: the hook below stays in this test
    s3.client.meta.events.register("before-send.s3.UploadPart",
                                   lambda **kw: threads.add(threading.get_ident()))
    upload_file(s3, big, S3Uri.parse(f"s3://{s3_bucket}/big.bin"))
    head = s3_client.head_object(Bucket=s3_bucket, Key="big.bin")
    assert head["ETag"].strip('"').endswith("-3") and len(threads) >= 2  # parts, in parallel
    assert head["Metadata"]["sha256"] == hashlib.sha256(big.read_bytes()).hexdigest()
    download_file(s3, S3Uri.parse(f"s3://{s3_bucket}/big.bin"), tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()
