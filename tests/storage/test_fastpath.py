"""The small-object fast path: the client's TLS settings, off after repeated network
failures, off on request. (Its speed is measured in benchmarks/bench_s3.py.)"""

from __future__ import annotations

import argparse
import os
import ssl
from pathlib import Path

import boto3
import pytest

from rectrain.storage.fastpath import NET_FAILURES_OFF, FastPath, client_ssl_context
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import RetryPolicy


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


def test_signature_is_botocores(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hand-written SigV4 must sign exactly as botocore's S3SigV4Auth does (the judge)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from rectrain.storage.fastpath import SigV4, quote_key

    for token in (None, "session-token"):
        creds = Credentials("AKIAEXAMPLE", "secret/key+x", token)
        path = "/bench/" + quote_key("d ir/ü+=&?#%x~.png")
        headers = {"content-length": "3", "x-amz-checksum-sha256": "AAAA", "x-amz-meta-sha256": "ab  cd"}
        ours = SigV4(creds, "eu-west-1").sign("PUT", "127.0.0.1:8333", path, dict(headers), "f" * 64,
                                              now=1_790_000_000)
        request = AWSRequest("PUT", "http://127.0.0.1:8333" + path, data=b"abc",
                             headers={**headers, "X-Amz-Content-SHA256": "f" * 64})
        auth = S3SigV4Auth(creds, "s3", "eu-west-1")
        monkeypatch.setattr(auth, "_modify_request_before_signing", lambda req: req)
        request.context["timestamp"] = ours["x-amz-date"]
        request.headers["X-Amz-Date"] = ours["x-amz-date"]
        request.headers["Host"] = "127.0.0.1:8333"
        if token:
            request.headers["X-Amz-Security-Token"] = token
        theirs = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
        assert ours["authorization"].endswith("Signature=" + theirs)

    # a listing: the query string signed as botocore encodes and sorts the request's parameters
    from rectrain.storage.fastpath import canonical_query

    creds = Credentials("AKIAEXAMPLE", "secret/key+x", None)
    params = {"list-type": "2", "prefix": "d ir/ü+=&?#%x~/", "encoding-type": "url",
              "continuation-token": "1/ab+c==", "max-keys": "1000"}
    ours = SigV4(creds, "eu-west-1").sign("GET", "127.0.0.1:8333", "/bench", {}, "e" * 64,
                                          now=1_790_000_000, query=canonical_query(params))
    request = AWSRequest("GET", "http://127.0.0.1:8333/bench", params=params,
                         headers={"X-Amz-Content-SHA256": "e" * 64})
    auth = S3SigV4Auth(creds, "s3", "eu-west-1")
    monkeypatch.setattr(auth, "_modify_request_before_signing", lambda req: req)
    request.context["timestamp"] = ours["x-amz-date"]
    request.headers["X-Amz-Date"] = ours["x-amz-date"]
    request.headers["Host"] = "127.0.0.1:8333"
    theirs = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    assert ours["authorization"].endswith("Signature=" + theirs)


def test_keys_are_addressed_as_the_client_addresses_them(s3_client, s3_bucket) -> None:  # noqa: ANN001
    from urllib.parse import urlsplit

    from rectrain.storage.fastpath import quote_key

    fast = FastPath(s3_client)
    for key in ("a b/ü+c~d", "x=1&y?#%.png", "ทดสอบ/ภาพ 1.jpg"):
        url = s3_client.generate_presigned_url("get_object", Params={"Bucket": s3_bucket, "Key": key})
        scheme, netloc, prefix = fast.base(s3_bucket)
        assert urlsplit(url).path == prefix + quote_key(key)
        data = key.encode() * 3
        import base64
        import hashlib

        sha = hashlib.sha256(data).hexdigest()
        assert fast.put(s3_bucket, key, data, sha, base64.b64encode(bytes.fromhex(sha)).decode())
        assert s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == data  # plain boto3 reads it
        fields, body = fast.get(s3_bucket, key)
        assert b"".join(body.iter_chunks(7)) == data and fields["Metadata"]["sha256"] == sha


def test_the_server_refuses_a_corrupted_upload(s3_client, s3_bucket, tmp_path: Path) -> None:  # noqa: ANN001
    """What makes skipping a read-back safe: a body that is not what its checksums say is refused
    by the server (SeaweedFS checks x-amz-checksum-sha256 and Content-MD5, as AWS S3 does), through
    the fast path and through boto3, and nothing is stored."""
    import base64
    import hashlib

    from rectrain.errors import IntegrityError
    from rectrain.storage.objects import put_object

    good = os.urandom(5000)
    bad = bytes([good[0] ^ 1]) + good[1:]
    sha = hashlib.sha256(good).hexdigest()
    b64 = base64.b64encode(bytes.fromhex(sha)).decode()
    fast = FastPath(s3_client)
    assert fast.put(s3_bucket, "bad-fast", bad, sha, b64, hashlib.md5(good).hexdigest()) is False
    assert fast.put(s3_bucket, "bad-sha", bad, sha, b64, hashlib.md5(bad).hexdigest()) is False
    path = tmp_path / "f.bin"
    path.write_bytes(bad)
    with pytest.raises(IntegrityError):  # the regular client then gets BadDigest: not stored
        put_object(s3_client, s3_bucket, "bad-both", path=path, data=bad, sha=sha, size=len(bad),
                   fast=fast, retry=RetryPolicy(5))
    listed = s3_client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])
    assert listed == []


def _count_fast_requests(monkeypatch: pytest.MonkeyPatch) -> dict:
    """Counts the PUTs and GETs the fast path completed (a 200 it handled), on threads or in
    the one-thread request loop."""
    counts = {"put": 0, "get": 0}
    real_put, real_get = FastPath.put, FastPath.get

    def put(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        done = real_put(self, *args, **kwargs)
        counts["put"] += bool(done)
        return done

    def get(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        got = real_get(self, *args, **kwargs)
        counts["get"] += got is not None
        return got

    monkeypatch.setattr(FastPath, "put", put)
    monkeypatch.setattr(FastPath, "get", get)

    from rectrain.storage.fastloop import RequestLoop

    real_run = RequestLoop.run

    def run(self, items, request, deliver):  # noqa: ANN001, ANN202 - the one-thread loop's too
        methods = {}

        def sent(item):  # noqa: ANN001, ANN202
            made = request(item)
            methods[id(item)] = made.method
            return made

        def received(item, headers, body):  # noqa: ANN001, ANN202
            counts[methods[id(item)].lower()] += 1
            return deliver(item, headers, body)

        return real_run(self, items, sent, received)

    monkeypatch.setattr(RequestLoop, "run", run)
    return counts


def test_push_and_pull_through_the_service_use_the_fast_path(s3_server, s3_bucket, tmp_path: Path,  # noqa: ANN001
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The service the CLI builds (rectrain.cli.edge.s3_service) sends every small file through
    the fast path, and none with --no-fastpath: the switch lives in S3Service only."""
    from rectrain.cli.edge import s3_service
    from rectrain.storage.pull import pull
    from rectrain.storage.push import push

    from .helpers import make_tree

    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("RECTRAIN_NO_FASTPATH", raising=False)
    counts = _count_fast_requests(monkeypatch)
    files = make_tree(tmp_path / "src", files=12)
    args = argparse.Namespace(endpoint_url=s3_server.endpoint_url, profile=None, region=None,
                              no_fastpath=False)
    service = s3_service(args, workers=4)
    uri = S3Uri.parse(f"s3://{s3_bucket}/fast")
    assert push(service, tmp_path / "src", uri, workers=4, progress=False).transferred == len(files)
    assert counts["put"] == len(files)  # the manifest goes up streamed from its file, by boto3
    assert pull(service, uri, tmp_path / "dst", workers=4, progress=False).transferred == len(files)
    assert counts["get"] >= len(files)  # every file (and the manifest)

    counts.update(put=0, get=0)
    args.no_fastpath = True
    slow = s3_service(args, workers=4)
    slow_uri = S3Uri.parse(f"s3://{s3_bucket}/slow")
    assert push(slow, tmp_path / "src", slow_uri, workers=4, progress=False).transferred == len(files)
    assert pull(slow, slow_uri, tmp_path / "dst2", workers=4, progress=False).transferred == len(files)
    assert counts == {"put": 0, "get": 0}


def test_listing_pages_are_the_clients(s3_client, s3_bucket) -> None:  # noqa: ANN001
    """ListObjectsV2 through the fast path, page by page, gives what boto3's own paginator gives
    (the judge): keys the server URL-encodes (spaces, '+', '&', '<', Thai, '%2F'), sizes,
    ETags, continuation tokens; a missing bucket goes to the client, which names the error."""
    from rectrain.errors import StorageError
    from rectrain.storage.objects import iter_objects

    keys = ["lst/a b+c&d<e>.png", "lst/ทดสอบ/ภาพ 1.jpg", "lst/x%2Fy.txt", "lst/z/0", "lst/z/1",
            "lst2/not-in-the-folder"]
    for i, key in enumerate(keys):
        s3_client.put_object(Bucket=s3_bucket, Key=key, Body=b"x" * (i + 1))
    judge = [(o["Key"], o["Size"], o["ETag"].strip('"'))
             for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket, Prefix="lst/")
             for o in page.get("Contents", [])]
    assert len(judge) == 5
    fast = FastPath(s3_client, attempts=1)
    pages, token = [], None
    while True:
        got = fast.list_page(s3_bucket, "lst/", token, max_keys=2)
        assert got is not None
        pages.append(got[0])
        token = got[1]
        if token is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [o for page in pages for o in page] == judge
    uri = S3Uri.parse(f"s3://{s3_bucket}/lst")
    assert [(o.key, o.size, o.etag) for o in iter_objects(s3_client, uri, fast=fast)] == judge
    assert fast.list_page("rectrain-no-such-bucket", "") is None  # a 404: the client answers
    with pytest.raises(StorageError) as info:
        list(iter_objects(s3_client, S3Uri.parse("s3://rectrain-no-such-bucket/x"), fast=fast))
    assert "rectrain-no-such-bucket" in str(info.value)


def test_a_chunked_body_is_read_whole_or_not_at_all() -> None:
    """AWS S3 may send a listing chunked (SeaweedFS sends a length): decoded here, extensions
    and trailers included; a body cut short is an error, never a shorter listing."""
    import socket

    from rectrain.storage.fastpath import _Connection, _ProtocolError

    def answer(raw: bytes) -> bytes:
        ours, theirs = socket.socketpair()
        with ours, theirs:
            theirs.sendall(raw)
            theirs.shutdown(socket.SHUT_WR)
            conn = _Connection("http", "localhost", 80, 5.0, None)
            conn.sock = ours
            response = conn.request(b"GET / HTTP/1.1\r\n\r\n", None)
            assert response.chunked and response.length == -1
            return response.read()

    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"5;name=v\r\n<List\r\n0b\r\nBucketResul\r\n2\r\nt>\r\n0\r\nx-trailer: 1\r\n\r\n"
    assert answer(head + body) == b"<ListBucketResult>"
    with pytest.raises(_ProtocolError):
        answer(head + body[:30])
    with pytest.raises(_ProtocolError):
        answer(head + b"5\r\n<ListB\r\n0\r\n\r\n")  # a chunk longer than announced

