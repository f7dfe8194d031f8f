"""One owner per run (issue 21 deliverable 2), below the CLI: the run folder's lock names the
holder's pid and host and is free again once that process is killed; the prefix lease
refuses while its owner lives (another host's fresh heartbeat, a live pid on this host),
and an expired lease, or one of a dead process, is taken over and logged. Real SeaweedFS."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rectrain.checkpoints.owner import LEASE_KEY, PrefixLease, RunBusy, RunLock
from rectrain.storage.s3 import S3Uri


def test_the_run_lock_names_its_holder_and_frees_itself_when_it_dies(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from rectrain.checkpoints.owner import RunLock; RunLock.acquire(Path(sys.argv[1])); "
         "print('locked', flush=True); time.sleep(60)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert RunLock.held(tmp_path) is True
        with pytest.raises(RunBusy) as err:
            RunLock.acquire(tmp_path)
        assert f"pid {holder.pid}" in str(err.value) and socket.gethostname() in str(err.value)
        assert err.value.exit_code == 2 and "Fix:" in str(err.value)
    finally:
        holder.kill()  # kill -9: no clean-up at all
        holder.wait()
    assert RunLock.held(tmp_path) is False
    RunLock.acquire(tmp_path).release()
    assert RunLock.held(tmp_path / "never-locked") is None


def _plant(client: Any, bucket: str, host: str, pid: int, age_s: float) -> None:
    client.put_object(Bucket=bucket, Key=f"p/{LEASE_KEY}", Body=json.dumps(
        {"run_id": "theirs", "host": host, "pid": pid, "heartbeat": time.time() - age_s, "ttl_s": 120,
         "claim": "x"}).encode())


def test_the_prefix_lease(s3: Any, s3_client: Any, s3_bucket: str, caplog: pytest.LogCaptureFixture) -> None:
    prefix = S3Uri.parse(f"s3://{s3_bucket}/p")
    _plant(s3_client, s3_bucket, "algo-9", 4242, age_s=10)  # another machine, alive
    with pytest.raises(RunBusy) as err:
        PrefixLease(s3, prefix).acquire()
    assert "pid 4242 on host algo-9" in str(err.value) and "run theirs" in str(err.value)
    with pytest.raises(RunBusy):
        PrefixLease(s3, prefix).check_free("`ckpt push`")
    _plant(s3_client, s3_bucket, "algo-9", 4242, age_s=600)  # its heartbeat stopped long ago
    with caplog.at_level(logging.WARNING):
        lease = PrefixLease(s3, prefix, run_id="mine").acquire()
    assert "taking over the expired lease" in caplog.text and "algo-9" in caplog.text
    body = json.loads(s3_client.get_object(Bucket=s3_bucket, Key=f"p/{LEASE_KEY}")["Body"].read())
    assert (body["run_id"], body["host"], body["pid"]) == ("mine", socket.gethostname(), os.getpid())
    lease.release()
    assert "Contents" not in s3_client.list_objects_v2(Bucket=s3_bucket, Prefix=f"p/{LEASE_KEY}")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a process of this host that is gone (kill -9 of a run)
    _plant(s3_client, s3_bucket, socket.gethostname(), dead.pid, age_s=1)
    PrefixLease(s3, prefix).acquire().release()
