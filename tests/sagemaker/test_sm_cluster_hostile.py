"""Attacks on the two-host run-local: Ctrl-C or SIGTERM while both hosts train must leave no
namespace, veth, /etc/netns folder or host process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sm_helpers import make_tiny_dataset


def _ours(pid: int):
    run = Path("/run/netns")
    names = [p.name for p in run.iterdir()] if run.is_dir() else []
    return sorted(n for n in names if n.startswith(f"rectrain-{pid}-"))


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_run_local_removes_every_namespace(sig, host_network_available, s3_server, s3_client,
                                                        s3_bucket, tmp_path):
    data = make_tiny_dataset(tmp_path / "data")
    for path in sorted(data["root"].rglob("*")):
        if path.is_file():
            s3_client.upload_file(str(path), s3_bucket, f"train/{path.relative_to(data['root']).as_posix()}")
    env = {**os.environ, **s3_server.env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rectrain", "sagemaker", "run-local", "--train", f"s3://{s3_bucket}/train",
         "--output", f"s3://{s3_bucket}/jobs", "--preset", "crnn-mv3", "--instance-count", "2",
         "--instance-type", "ml.m5.xlarge", "--epochs", "50", "--endpoint-url", s3_server.endpoint_url,
         "--work-dir", str(tmp_path / "ml")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        running = False
        while time.monotonic() < deadline and proc.poll() is None and not running:
            time.sleep(1)
            names = _ours(proc.pid)
            pids = [subprocess.run(["ip", "netns", "pids", n], capture_output=True, text=True).stdout.split()
                    for n in names]
            running = len(names) == 2 and all(pids)
        assert running, "both hosts never ran"
        names = _ours(proc.pid)
        proc.send_signal(sig)
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err = proc.stderr.read() if proc.stderr else ""
    assert proc.returncode != 0
    assert "Traceback" not in err, err[-2000:]
    assert _ours(proc.pid) == []
    assert not any(Path("/etc/netns", n).exists() for n in names)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f"rt{proc.pid}" not in links
