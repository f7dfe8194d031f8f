from __future__ import annotations

import os
import subprocess

import pytest

from rectrain.errors import StorageError
from rectrain.storage.server import SeaweedServer, port_is_free


def _listening_pids(port: int) -> str:
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True)
    return out.stdout


def test_fixture_server_answers_on_loopback(s3_server, s3_client, s3_bucket):
    assert s3_server.endpoint_url.startswith("http://127.0.0.1:")
    s3_client.put_object(Bucket=s3_bucket, Key="a/b.txt", Body="สวัสดี".encode())
    body = s3_client.get_object(Bucket=s3_bucket, Key="a/b.txt")["Body"].read()
    assert body.decode() == "สวัสดี"
    assert set(s3_server.env) == {
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
    }


def test_every_port_is_loopback_and_telemetry_off(s3_server):
    argv = s3_server.command(s3_server.data_dir, s3_server.data_dir / "x.json")
    assert "-master.telemetry=false" in argv
    assert "-ip.bind=127.0.0.1" in argv and "-webdav=false" in argv
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    pid = str(s3_server.process.pid)
    lines = [line for line in out.splitlines() if f"pid={pid}," in line]
    assert lines, out
    for line in lines:
        local = line.split()[3]
        assert local.startswith("127.0.0.1:"), line


def test_read_only_identity_cannot_write(s3_server, s3_bucket):
    ro = s3_server.client(read_only=True)
    assert ro.list_objects_v2(Bucket=s3_bucket)["KeyCount"] == 0
    with pytest.raises(Exception) as info:
        ro.put_object(Bucket=s3_bucket, Key="x", Body=b"1")
    assert "AccessDenied" in str(info.value)


@pytest.mark.slow
def test_restart_keeps_data_port_and_keys_and_stop_leaves_nothing(seaweed_factory, tmp_path):
    server = seaweed_factory(tmp_path / "srv")
    port, key = server.port, server.access_key
    client = server.client()
    client.create_bucket(Bucket="keep")
    client.put_object(Bucket="keep", Key="k", Body=b"data")
    pid = server.process.pid
    server.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert port_is_free(port)
    again = SeaweedServer(tmp_path / "srv", port=port).start()
    try:
        assert again.access_key == key
        assert again.client().get_object(Bucket="keep", Key="k")["Body"].read() == b"data"
    finally:
        again.stop()
    assert not _listening_pids(port).strip()


def test_busy_port_is_one_clear_error(s3_server, tmp_path):
    with pytest.raises(StorageError) as info:
        SeaweedServer(tmp_path / "other", port=s3_server.port).start()
    message = str(info.value)
    assert str(s3_server.port) in message and "--port" in message
    assert "\n" not in message


@pytest.mark.slow
def test_server_dies_with_a_killed_parent(tmp_path):
    """Even a SIGKILLed Python process leaves no server behind (parent-death signal)."""
    import signal
    import sys
    import time

    code = (
        "import sys, time\n"
        "from rectrain.storage.server import SeaweedServer\n"
        f"s = SeaweedServer({str(tmp_path / 'srv')!r}).start()\n"
        "print(s.process.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    weed_pid = int(proc.stdout.readline())
    os.kill(weed_pid, 0)  # running
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(weed_pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(weed_pid, signal.SIGKILL)
    pytest.fail("the weed server outlived its killed parent")
