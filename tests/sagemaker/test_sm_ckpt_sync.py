"""SageMaker's checkpoint sync as AWS documents it (emulator/checkpoint_agent.py), and rectrain's
checkpoints under it: SIGTERM at random moments (right after a save, during the snapshot copy
and rotation, during an upload), at least five times, each attempt on a fresh "instance"
restored from S3 in random order with new mtimes, then a clean finish. Real engine on the
CPU, real SeaweedFS."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

from rectrain.checkpoints.local import read_pointer, verify_snapshot
from rectrain.checkpoints.remote import download_snapshot, read_remote_pointer, scan_remote
from rectrain.emulator.checkpoint_agent import SageMakerCheckpointSync, restore_and_start
from rectrain.errors import IntegrityError, StorageError
from rectrain.runlog.plots import continuous
from rectrain.runlog.records import read_metrics
from rectrain.storage.s3 import S3Uri
from tests.training.tinydata import make_dataset, tiny_config

REPO = Path(__file__).resolve().parents[2]


def test_the_emulation_is_no_kinder_than_sagemaker(s3: Any, tmp_path: Path, s3_client: Any,
                                                   s3_bucket: str) -> None:
    uri = f"s3://{s3_bucket}/ck"
    folder = tmp_path / "a"
    sync = restore_and_start(s3, folder, S3Uri.parse(uri), every=60)  # scans only when asked
    (folder / "sub").mkdir()
    for i in range(20):
        (folder / "sub" / f"f{i:02d}").write_bytes(b"x" * i)
    assert sync.scan() == 20
    (folder / "sub" / "f03").unlink()  # deleted here: deleted in S3
    (folder / "late").write_bytes(b"written after the stop")
    sync.scan()
    keys = {o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket, Prefix="ck/")["Contents"]}
    assert "ck/sub/f03" not in keys and "ck/late" in keys
    (folder / "after").write_bytes(b"never uploaded")
    sync.stop()  # a stopped job uploads nothing more
    assert sync.scan() == 0
    keys = {o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket, Prefix="ck/")["Contents"]}
    assert "ck/after" not in keys and len(keys) == 20
    # a new instance: everything back, in random order, each file with a new mtime
    orders = []
    for seed in (1, 2):
        before = time.time()
        other = SageMakerCheckpointSync(s3, tmp_path / f"b{seed}", S3Uri.parse(uri), rng=random.Random(seed))
        other.restore()
        files = sorted((tmp_path / f"b{seed}").rglob("*"), key=lambda p: p.stat().st_mtime_ns)
        orders.append([p.name for p in files if p.is_file()])
        assert all(p.stat().st_mtime >= before - 1 for p in files)
    assert orders[0] != orders[1] and sorted(orders[0]) == sorted(orders[1])


def _newest_complete(s3: Any, uri: str, tmp: Path) -> int:
    """The step of the newest resume point (latest / iter_epoch_N) in S3 whose every file
    matches its marker: what a restart must continue from (0: none). Newest first, so only
    the folders down to the first complete one are downloaded."""
    folders = [(f.info.global_step, f.name) for f in scan_remote(s3, S3Uri.parse(uri + "/snapshots"))
               if f.info is not None and not f.info.name.startswith("best_")]
    for step, name in sorted(folders, reverse=True):
        try:
            download_snapshot(s3, S3Uri.parse(uri + "/snapshots"), name, tmp)
        except (IntegrityError, StorageError):
            continue
        return step
    return 0


def _train_records(run: Path) -> List[Dict[str, Any]]:
    path = run / "metrics.jsonl"
    return read_metrics(path) if path.exists() else []


class _Growing:
    """A metrics.jsonl read as it grows: each poll parses only the lines added since the last
    (re-reading the whole history every 10 ms cost ~1.5 ms a time, beside the engine on 2
    cores). A torn last line waits for the next poll."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0
        self.records: List[Dict[str, Any]] = []

    def read(self) -> List[Dict[str, Any]]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return self.records
        end = data.rfind(b"\n") + 1
        for line in data[:end].splitlines():
            try:
                self.records.append(json.loads(line))
            except ValueError:
                continue  # blank
        self.offset += end
        return self.records


def _restored_records(machine: Path) -> int:
    """How many metrics records the restored history holds (this attempt appends after)."""
    path = machine / "checkpoints" / "run" / "metrics.jsonl"
    return len(read_metrics(path)) if path.exists() else 0


@pytest.mark.slow
def test_sigterm_at_random_moments_under_sagemakers_sync(s3, tmp_path: Path, s3_client: Any,
                                                       s3_bucket: str, s3_server: Any) -> None:
    from rectrain.engine import find_engine
    from rectrain.errors import EnvironmentProblem

    try:
        find_engine()
    except EnvironmentProblem as exc:
        pytest.skip(f"no PaddleOCR engine: {exc}")
    # the draws (strike moments, restore orders) are the same in every run; what S3 holds at
    # each strike still depends on the machine's speed, and every expectation is read from S3.
    # RECTRAIN_TEST_SEED=N explores other draws (seed 1 showed the restored-engine-files bug
    # here: its first strike came before anything was sealed in S3; docs/problem-log.md)
    seed = int(os.environ.get("RECTRAIN_TEST_SEED", "1"))
    rng = random.Random(seed)
    print(f"RECTRAIN_TEST_SEED={seed}")
    # enough steps that the fifth strike always lands before the end: an attempt trains 5-9
    # steps to a save, then at most 1.5 s more (about 10 steps on an idle machine)
    epochs, kills_wanted = 30, 5
    steps = epochs * 4
    config = tiny_config(make_dataset(tmp_path / "data"), tmp_path / "cfg" / "c.yml", epochs=epochs,
                         warmup_epoch=1, save_epoch_step=2, eval_step=4)
    uri = f"s3://{s3_bucket}/job/checkpoints"
    env = dict(os.environ, **s3_server.env)
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    # a marker only once the files are 6 sync rounds old (production: 60 s; the engine's
    # steps on this tiny set take a few hundredths of a second)
    env["RECTRAIN_SEAL_AFTER_S"] = "0.3"
    kills, attempt = 0, 0
    expected: List[int] = []
    while True:
        assert attempt < kills_wanted + 3, "the run does not converge to a finish"
        machine = tmp_path / f"instance{attempt}"
        expected.append(_newest_complete(s3, uri, tmp_path / f"verify{attempt}"))
        sync = restore_and_start(s3, machine / "checkpoints", S3Uri.parse(uri), every=0.05,
                                 seed=rng.randrange(1 << 30))
        n0 = _restored_records(machine)
        argv = [sys.executable, "-m", "rectrain", "train", "--config", str(config), "--run-dir",
                str(machine / "run"), "--checkpoint-dir", str(machine / "checkpoints"),
                "--device", "cpu", "--sub-epochs", "2", "--display", "json"]
        if attempt:
            argv.append("--resume")
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if kills < kills_wanted:
            mode = ("right after a save", "during the snapshot and its upload",
                    "at a random step")[kills % 3]
            delay = {0: 0.0, 1: rng.uniform(0.02, 0.5), 2: rng.uniform(0.5, 1.5)}[kills % 3]
            steps_wanted = rng.randint(5, 9)  # progress first (a few saves), then strike
            deadline = time.monotonic() + 240
            growing = _Growing(machine / "run" / "metrics.jsonl")
            while time.monotonic() < deadline:
                assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
                mine = growing.read()[n0:]
                trained = sum(r["type"] == "train" for r in mine)
                if trained >= steps_wanted and mine[-1]["type"] == "save":
                    break  # right after a save: the snapshot, its seal and upload are due
                time.sleep(0.01)
            time.sleep(delay)
            sync.stop()  # the job is stopped: SageMaker uploads nothing more
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=180)
            assert proc.returncode in (75, 0), err.decode()[-3000:]
            kills += 1
            print(f"attempt {attempt}: SIGTERM {mode} (after {steps_wanted}+ steps, +{delay:.2f} s)")
        else:
            _, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, err.decode()[-3000:]
            sync.stop(final=True)  # a job that ends by itself: SageMaker's last upload
        records = _train_records(machine / "run")
        mine = records[n0:]
        first = next(r for r in mine if r["type"] == "train")
        if attempt and expected[-1]:
            resume = next(r for r in mine if r["type"] == "resume")
            # always the newest complete checkpoint S3 held, the step continuing from it
            assert resume["global_step"] == expected[-1], (attempt, resume, expected, err.decode()[-2000:])
            assert first["global_step"] == expected[-1] + 1, (attempt, first, expected)
        else:  # nothing sealed in S3: the engine's restored files are no resume point
            assert first["global_step"] == 1, (attempt, first, expected, err.decode()[-2000:])
        if proc.returncode == 0 and kills >= kills_wanted:
            break
        attempt += 1

    print("expected resume steps per attempt:", expected)
    assert kills >= 5 and sum(step > 0 for step in expected[1:]) >= 2, expected  # real resumes
    records = _train_records(machine / "run")  # the history, restored and appended each time
    train = [r for r in continuous(records) if r["type"] == "train"]
    assert [r["global_step"] for r in train] == list(range(1, steps + 1))
    seen: Dict[int, float] = {}
    for r in (r for r in records if r["type"] == "train"):  # the lr schedule continues
        if r["global_step"] in seen:
            assert r["lr"] == pytest.approx(seen[r["global_step"]], abs=2e-6)
        seen[r["global_step"]] = r["lr"]
    assert train[-1]["lr"] < 0.0001
    # the final model and the run's best are complete in S3
    folder, latest = read_remote_pointer(s3, S3Uri.parse(uri + "/snapshots"), "latest")
    assert latest.global_step == steps
    verify_snapshot(download_snapshot(s3, S3Uri.parse(uri + "/snapshots"), folder, tmp_path / "final"))
    folder, best = read_remote_pointer(s3, S3Uri.parse(uri + "/snapshots"), "best_of_run")
    verify_snapshot(download_snapshot(s3, S3Uri.parse(uri + "/snapshots"), folder, tmp_path / "final"))
    evals = [r["acc"] for r in continuous(records) if r["type"] == "eval" and "acc" in r]
    assert best.metric["acc"] >= max(evals) - 1e-9
    assert read_pointer(machine / "checkpoints" / "snapshots", "best_of_run") is not None
