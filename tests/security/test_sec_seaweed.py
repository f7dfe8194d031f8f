"""The embedded S3 server is private (issue 25, item 6): `rectrain s3 serve` keeps its data
folder to its owner (0700, no file other users can read) and none of the HTTP listeners of
`weed mini` (S3, filer, master, volume, admin, and the gRPC ports answering HTTP) hands out or
takes a bucket object without S3 signing. Any local user or process can reach 127.0.0.1: the
S3 keys and the read-only identity mean nothing if the filer serves ``/buckets/...`` to anyone.

Black-box: the server is the CLI's, its listening ports are read from the process (psutil),
the probes are plain HTTP requests.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from tests.security.gadgets import cli_env

BUCKET = "private-data"
KEY = "datasets/thai/labels.txt"
CONTENT = b"img_001.png\tSECRET-CONTENT-d41f\n"


@dataclass
class Served:
    data_dir: Path
    client: Any
    ports: List[int]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _read_json(proc: subprocess.Popen) -> Dict[str, Any]:
    text = ""
    while True:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line:
            raise AssertionError(f"`rectrain s3 serve` printed no JSON: {text!r}")
        text += line
        try:
            return json.loads(text)
        except ValueError:
            continue


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    psutil = pytest.importorskip("psutil")
    import boto3

    data_dir = tmp_path_factory.mktemp("serve") / "s3data"  # created by rectrain
    proc = subprocess.Popen([sys.executable, "-m", "rectrain", "s3", "serve", "--data-dir", str(data_dir),
                             "--port", str(_free_port()), "--json"],
                            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, text=True)
    try:
        info = _read_json(proc)
        env = info["env"]
        client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                              aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
        client.create_bucket(Bucket=BUCKET)
        client.put_object(Bucket=BUCKET, Key=KEY, Body=CONTENT)
        assert client.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == CONTENT  # with keys: fine
        ports = set()
        for child in psutil.Process(proc.pid).children(recursive=True):
            for conn in child.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    ports.add(conn.laddr.port)
        assert ports, "no listening port found"
        yield Served(Path(info["data_dir"]), client, sorted(ports))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _http(method: str, url: str, body: Optional[bytes] = None) -> Tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except OSError:
        return 0, b""  # not HTTP, reset, refused: nothing served


def test_data_dir_is_private(served: Served) -> None:
    mode = stat.S_IMODE(os.stat(served.data_dir).st_mode)
    assert mode & 0o077 == 0, f"{served.data_dir} is {oct(mode)}, not 0700"


def test_no_file_of_the_server_is_open_to_other_users(served: Served) -> None:
    """Volume files hold every object's bytes; sockets take requests without keys.

    Exception: ``<volume>.vif`` (the volume's settings: version, replication; no object byte),
    which weed 4.x writes atomically and then ``fchmod``s to 0644 whatever the umask (seen with
    strace; docs/problem-log.md 2026-12-05). The 0700 data folder keeps other users away from
    it; every file holding data or taking requests is checked here."""
    found = []
    for dirpath, dirs, files in os.walk(served.data_dir):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            mode = os.lstat(path).st_mode
            is_dir = stat.S_ISDIR(mode)
            if name.endswith(".vif") and not mode & 0o022:
                continue
            if (not is_dir and mode & 0o006) or (is_dir and mode & 0o002):
                found.append(f"{path} ({oct(stat.S_IMODE(mode))})")
    assert not found, f"open to other users: {found[:10]} ({len(found)} in all)"


def test_no_listener_serves_a_bucket_object_without_signing(served: Served) -> None:
    served_by = []
    for port in served.ports:
        for path in (f"/buckets/{BUCKET}/{KEY}", f"/{BUCKET}/{KEY}"):
            status, body = _http("GET", f"http://127.0.0.1:{port}{path}")
            if CONTENT in body:
                served_by.append(f"GET :{port}{path} -> {status}")
        status, body = _http("GET", f"http://127.0.0.1:{port}/buckets/{BUCKET}/datasets/thai/")
        if 200 <= status < 300 and b"labels.txt" in body:
            served_by.append(f"GET :{port}/buckets/{BUCKET}/datasets/thai/ (listing) -> {status}")
    assert not served_by, f"unsigned reads answered: {served_by}"


def test_no_listener_takes_a_write_without_signing(served: Served) -> None:
    for port in served.ports:
        for method in ("PUT", "POST"):
            _http(method, f"http://127.0.0.1:{port}/buckets/{BUCKET}/planted/{port}-{method}.txt",
                  b"planted without keys")
    keys = [o["Key"] for o in served.client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    planted = [k for k in keys if k.startswith("planted/")]
    assert not planted, f"objects written without S3 signing: {planted}"
