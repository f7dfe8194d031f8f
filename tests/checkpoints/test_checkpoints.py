"""Checkpoint detection, snapshots, S3 upload with the marker last, list/pull/prune, and the
best-of-run rule. Checkpoint files are written the way the engine's save_model writes them
(.pdopt, .pdparams, then the .states pickle); S3 is a real SeaweedFS."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

from rectrain.checkpoints.api import (
    download_recognition_checkpoints_from_s3,
    list_checkpoints,
    prune_checkpoints,
    sync_recognition_checkpoints_to_s3,
)
from rectrain.checkpoints.local import (
    MARKER,
    read_pointer,
    read_states,
    scan_local,
    snapshot,
    verify_snapshot,
)
from rectrain.checkpoints.remote import list_remote, upload_pointer, upload_snapshot
from rectrain.checkpoints.sync import CheckpointSync
from rectrain.errors import IntegrityError, UserError
from rectrain.storage.s3 import S3Uri


def save(ckdir: Path, name: str, *, epoch: int, step: int, acc: float, old: bool = True) -> None:
    """Write a checkpoint as ppocr/utils/save_load.py does; ``old`` backdates it (settled)."""
    ckdir.mkdir(parents=True, exist_ok=True)
    (ckdir / f"{name}.pdopt").write_bytes(os.urandom(2047) + b".")  # a pickle ends with STOP
    (ckdir / f"{name}.pdparams").write_bytes(os.urandom(4095) + b".")
    with open(ckdir / f"{name}.states", "wb") as fh:
        pickle.dump({"best_model_dict": {"acc": acc, "norm_edit_dis": acc / 2, "best_epoch": epoch},
                     "epoch": epoch, "global_step": step}, fh, protocol=2)
    if old:
        past = time.time() - 60
        for suffix in (".pdopt", ".pdparams", ".states"):
            os.utime(ckdir / f"{name}{suffix}", (past, past))


def folder(root: Path, name: str) -> Path:
    """The snapshot folder ``root/<name>.json`` points at."""
    got = read_pointer(root, name)
    assert got is not None, f"no pointer {name} in {root}"
    return got[0]


def test_engine_files_are_complete_by_their_content_not_their_age(tmp_path: Path) -> None:
    save(tmp_path, "latest", epoch=2, step=20, acc=0.5)
    save(tmp_path, "iter_epoch_3", epoch=3, step=30, acc=0.5, old=False)  # written just now
    assert [i.name for i in scan_local(tmp_path)] == ["iter_epoch_3", "latest"]
    # a new save in progress: .pdopt rewritten, .states still the old one
    (tmp_path / "latest.pdopt").write_bytes(b"new.")
    (tmp_path / "iter_epoch_3.pdparams").write_bytes(b"cut short")
    (tmp_path / "best_accuracy.pdparams").write_bytes(b"x")  # no .states: never complete
    assert [i.name for i in scan_local(tmp_path)] == []


def test_snapshot_marker_and_tamper_detection(tmp_path: Path) -> None:
    save(tmp_path / "ck", "latest", epoch=4, step=40, acc=0.25)
    info = snapshot(tmp_path / "ck", "latest", tmp_path / "snaps", sub_epochs=2)
    assert info.epoch == 2 and info.engine_epoch == 4 and info.global_step == 40
    first = folder(tmp_path / "snaps", "latest")
    assert first.name.startswith("s00000040-latest-")
    assert verify_snapshot(first).metric["acc"] == 0.25 and verify_snapshot(first).sub_epochs == 2
    # a new save goes to a new folder: the complete one is never renamed or rewritten
    save(tmp_path / "ck", "latest", epoch=6, step=60, acc=0.5)
    snapshot(tmp_path / "ck", "latest", tmp_path / "snaps", sub_epochs=2)
    second = folder(tmp_path / "snaps", "latest")
    assert second != first and verify_snapshot(first).global_step == 40
    (second / "latest.pdparams").write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match="checksum"):
        verify_snapshot(second)
    bad = tmp_path / "bad.states"
    bad.write_bytes(pickle.dumps(os.system))  # a .states must never run code
    with pytest.raises(IntegrityError):
        read_states(bad)


def test_upload_list_pull_with_marker_last(s3, tmp_path: Path, s3_client: Any, s3_bucket: str,
                                          s3_env: dict) -> None:
    prefix = f"s3://{s3_bucket}/run1"
    ck = tmp_path / "ck"
    save(ck, "latest", epoch=1, step=10, acc=0.1)
    snapshot(ck, "latest", ck / "snapshots")
    first = folder(ck / "snapshots", "latest")
    keys = upload_snapshot(s3, first, S3Uri.parse(prefix))
    assert keys[-1] == f"run1/{first.name}/_COMPLETE.json"  # the marker goes last
    # a folder without its pointer is not a named checkpoint yet
    assert list_remote(s3, S3Uri.parse(prefix)) == []
    upload_pointer(s3, ck / "snapshots", "latest", S3Uri.parse(prefix))
    # files without a marker (an upload cut short) do not count
    s3_client.put_object(Bucket=s3_bucket, Key="run1/s00000090-iter_epoch_9-abcdef/iter_epoch_9.pdparams",
                         Body=b"x")
    infos = list_remote(s3, S3Uri.parse(prefix))
    assert [(i.name, i.global_step) for i in infos] == [("latest", 10)]
    # a new `latest`: a new folder, then the pointer moves; the old folder is untouched
    save(ck, "latest", epoch=2, step=20, acc=0.2)
    snapshot(ck, "latest", ck / "snapshots")
    second = folder(ck / "snapshots", "latest")
    upload_snapshot(s3, second, S3Uri.parse(prefix))
    upload_pointer(s3, ck / "snapshots", "latest", S3Uri.parse(prefix))
    assert list_remote(s3, S3Uri.parse(prefix))[0].global_step == 20
    assert s3_client.head_object(Bucket=s3_bucket, Key=f"run1/{first.name}/{MARKER}")
    got = download_recognition_checkpoints_from_s3(prefix, tmp_path / "pulled",
                                                   endpoint_url=s3_client.meta.endpoint_url)
    assert got == tmp_path / "pulled" / "latest" / "latest"
    assert read_states(str(got) + ".states")["global_step"] == 20
    # a corrupted object in S3 is refused at download
    s3_client.put_object(Bucket=s3_bucket, Key=f"run1/{second.name}/latest.pdopt", Body=b"corrupt")
    with pytest.raises(IntegrityError):
        download_recognition_checkpoints_from_s3(prefix, tmp_path / "pulled2",
                                                 endpoint_url=s3_client.meta.endpoint_url)
    assert not (tmp_path / "pulled2" / "latest").exists()


def test_sync_and_prune_never_touch_best(s3, tmp_path: Path, s3_client: Any, s3_bucket: str,
                                         s3_env: dict) -> None:
    ck = tmp_path / "ck"
    for epoch in range(1, 6):
        save(ck, f"iter_epoch_{epoch}", epoch=epoch, step=epoch * 10, acc=0.1 * epoch)
    save(ck, "latest", epoch=5, step=50, acc=0.5)
    save(ck, "best_accuracy", epoch=3, step=30, acc=0.9)
    prefix = f"s3://{s3_bucket}/run2"
    endpoint = s3_client.meta.endpoint_url
    with pytest.raises(UserError, match="--run-id"):  # a checkpoint always says whose it is
        sync_recognition_checkpoints_to_s3(ck, prefix, endpoint_url=endpoint)
    keys = sync_recognition_checkpoints_to_s3(ck, prefix, endpoint_url=endpoint, run_id="run2")
    assert all(i.run_id == "run2" for i in list_remote(s3, S3Uri.parse(prefix)))
    assert sum(k.endswith(MARKER) for k in keys) == 7 and sum(k.endswith("latest.json") for k in keys) == 1
    assert sync_recognition_checkpoints_to_s3(ck, prefix, endpoint_url=endpoint) == []  # up to date
    removed = prune_checkpoints(prefix, keep_last=2, endpoint_url=endpoint)
    assert sorted(removed) == ["iter_epoch_1", "iter_epoch_2", "iter_epoch_3"]
    left = {i.name for i in list_remote(s3, S3Uri.parse(prefix))}
    assert left == {"latest", "best_accuracy", "iter_epoch_4", "iter_epoch_5"}
    gone = [o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket, Prefix="run2/")["Contents"]
            if "iter_epoch_1" in o["Key"]]
    assert gone == []
    removed = prune_checkpoints(ck, keep_last=0)
    assert len(removed) == 5
    assert {i.name for i in list_checkpoints(ck)} == {"latest", "best_accuracy"}


def test_best_of_run_survives_a_worse_best_after_resume(s3, tmp_path: Path, s3_client: Any,
                                                        s3_bucket: str, s3_env: dict) -> None:
    """The engine resets best acc to 0 on resume: its first eval overwrites best_accuracy even
    when worse. best_of_run/ (and best_accuracy in S3) must keep the run's best."""
    ck = tmp_path / "ck"
    prefix = f"s3://{s3_bucket}/run3"
    bests: Dict[str, Any] = {}
    sync = CheckpointSync(ck, tmp_path, s3_prefix=S3Uri.parse(prefix), s3=s3,
                          on_best=lambda info: bests.update(step=info.global_step))
    save(ck, "best_accuracy", epoch=2, step=20, acc=0.8)
    sync.on_save("best_accuracy")
    assert sync.close(timeout=60)
    assert bests["step"] == 20
    # "resume": a new segment knows the run's best (from run-state.json)
    sync = CheckpointSync(ck, tmp_path, s3_prefix=S3Uri.parse(prefix), s3=s3, best_so_far=0.8)
    save(ck, "best_accuracy", epoch=3, step=30, acc=0.3)  # worse, but the engine saved it
    sync.on_save("best_accuracy")
    assert sync.close(timeout=60)
    assert verify_snapshot(folder(ck / "snapshots", "best_of_run")).global_step == 20
    remote = {i.name: i for i in list_remote(s3, S3Uri.parse(prefix))}
    assert remote["best_of_run"].metric["acc"] == 0.8 and remote["best_accuracy"].global_step == 20
    save(ck, "best_accuracy", epoch=4, step=40, acc=0.95)  # a real improvement replaces it
    sync = CheckpointSync(ck, tmp_path, best_so_far=0.8)
    sync.on_save("best_accuracy")
    assert read_pointer(ck / "snapshots", "best_of_run")[1].global_step == 20  # not complete yet
    assert sync.close(timeout=5)  # without S3 the marker waits for the outside sync (or the end)
    assert verify_snapshot(folder(ck / "snapshots", "best_of_run")).global_step == 40


def test_ckpt_cli_list_push_pull(tmp_path: Path, s3_client: Any, s3_bucket: str, s3_env: dict,
                                 capsys: Any) -> None:
    from rectrain.cli.main import main

    ck = tmp_path / "run" / "checkpoints"
    save(ck, "latest", epoch=2, step=20, acc=0.5)
    save(ck, "iter_epoch_2", epoch=2, step=20, acc=0.5)
    prefix = f"s3://{s3_bucket}/cli"
    assert main(["ckpt", "push", str(tmp_path / "run"), prefix, "--run-id", "r1"]) == 0
    assert main(["--log-format", "json", "ckpt", "list", prefix]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()
            if line.startswith("{")]
    assert {(r["name"], r["global_step"]) for r in rows} == {("latest", 20), ("iter_epoch_2", 20)}
    assert main(["ckpt", "pull", prefix, str(tmp_path / "pulled"), "--name", "latest"]) == 0
    assert capsys.readouterr().out.strip().endswith("latest/latest")
    assert main(["ckpt", "prune", prefix, "--keep-last", "0", "--dry-run"]) == 0
    assert "would remove 1: iter_epoch_2" in capsys.readouterr().out


def test_push_right_after_the_run_uploads_its_newest_save(s3, tmp_path: Path, s3_bucket: str) -> None:
    """A run whose last snapshots failed (read-only folder, full disk) exits 5 naming `ckpt
    push`; run at once, the push snapshots and uploads the engine's newest save however new its
    files are (campaign seed 1: files under 2 s old were left out and the push exited 0)."""
    ck = tmp_path / "run" / "checkpoints"
    prefix = f"s3://{s3_bucket}/fresh"
    save(ck, "latest", epoch=3, step=6, acc=0.5)
    snapshot(ck, "latest", ck / "snapshots", run_id="r1")
    sync_recognition_checkpoints_to_s3(ck, prefix, s3=s3)
    save(ck, "latest", epoch=4, step=8, acc=0.6, old=False)  # its snapshot failed a moment ago
    sync_recognition_checkpoints_to_s3(ck, prefix, s3=s3)
    remote = {i.name: i for i in list_remote(s3, S3Uri.parse(prefix))}
    assert remote["latest"].global_step == 8 and remote["latest"].run_id == "r1"


def test_a_sync_uploads_the_snapshots_it_finds_or_names_them_missing(s3_server: Any, tmp_path: Path,
                                                                    s3_bucket: str) -> None:
    """Snapshots made before a sync starts (a resume's copy of the engine's own files, an upload
    an earlier attempt never finished) are the sync's too: a resume with nothing left to train
    exits 0 only with them in S3 (campaign seed 20), else they are missing (exit 5). Another
    run's snapshots stay where they are."""
    ck, run = tmp_path / "run" / "checkpoints", tmp_path / "run"
    prefix = S3Uri.parse(f"s3://{s3_bucket}/inherit")
    save(ck, "latest", epoch=4, step=8, acc=0.5)
    snapshot(ck, "latest", ck / "snapshots", run_id="r1")
    save(ck, "iter_epoch_9", epoch=9, step=18, acc=0.5)  # a run before a --restart: not r1's
    snapshot(ck, "iter_epoch_9", ck / "snapshots", run_id="r0")
    denied = CheckpointSync(ck, run, s3_prefix=prefix, s3=s3_server.service(read_only=True), run_id="r1")
    assert denied.close(timeout=30)
    assert [m for m in denied.missing() if "(latest)" in m], denied.missing()
    sync = CheckpointSync(ck, run, s3_prefix=prefix, s3=s3_server.service(), run_id="r1")
    assert sync.close(timeout=30) and sync.missing() == [], sync.errors
    assert {i.name: i.global_step for i in list_remote(s3_server.service(), prefix)} == {"latest": 8}
    again = CheckpointSync(ck, run, s3_prefix=prefix, s3=s3_server.service(), run_id="r1")
    assert again.close(timeout=30) and again.missing() == [] and again.uploaded_keys == []


def test_resume_picks_the_newest_complete_checkpoint_of_this_run(s3, tmp_path: Path, s3_client: Any,
                                                                 s3_bucket: str, s3_env: dict) -> None:
    from rectrain.training.resume import find_resume_checkpoint

    ck = tmp_path / "ck"
    prefix = f"s3://{s3_bucket}/resume"
    # an older run left a far-advanced checkpoint under the same prefix
    save(tmp_path / "old", "iter_epoch_50", epoch=50, step=500, acc=0.9)
    snapshot(tmp_path / "old", "iter_epoch_50", tmp_path / "old" / "snaps", run_id="oldrun")
    upload_snapshot(s3, folder(tmp_path / "old" / "snaps", "iter_epoch_50"), S3Uri.parse(prefix))
    # this run: latest at step 20 locally, iter_epoch_3 (step 30) only in S3
    save(ck, "latest", epoch=2, step=20, acc=0.5)
    snapshot(ck, "latest", ck / "snapshots", run_id="thisrun")
    local_latest = folder(ck / "snapshots", "latest")
    save(tmp_path / "other", "iter_epoch_3", epoch=3, step=30, acc=0.6)
    snapshot(tmp_path / "other", "iter_epoch_3", tmp_path / "other" / "snaps", run_id="thisrun")
    remote_iter = folder(tmp_path / "other" / "snaps", "iter_epoch_3")
    upload_snapshot(s3, remote_iter, S3Uri.parse(prefix))
    # a newer best_accuracy is never a resume point (saved mid-epoch)
    save(ck, "best_accuracy", epoch=4, step=45, acc=0.7)
    got = find_resume_checkpoint(ck, S3Uri.parse(prefix), s3=s3, run_id="thisrun")
    assert got == ck / "snapshots" / remote_iter.name / "iter_epoch_3"  # downloaded and verified
    assert read_states(str(got) + ".states")["global_step"] == 30
    assert find_resume_checkpoint(ck, None, run_id="thisrun") == got  # now local, no S3 needed
    shutil.rmtree(ck / "snapshots" / remote_iter.name)
    assert find_resume_checkpoint(ck, None, run_id="thisrun") == local_latest / "latest"
    assert find_resume_checkpoint(tmp_path / "empty", None) is None


def test_resume_refuses_with_the_list_when_nothing_found_is_usable(s3,
        tmp_path: Path, s3_client: Any, s3_bucket: str, s3_env: dict) -> None:
    """Found but unusable (damaged locally, a marker-less folder in S3, another run's) is never
    "nothing there": --resume stops with the list and why."""
    from rectrain.training.resume import (
        NoUsableCheckpoint,
        adopt_run,
        find_resume_checkpoint,
        scan_checkpoints,
    )

    ck = tmp_path / "ck"
    prefix = f"s3://{s3_bucket}/refuse"
    save(ck, "latest", epoch=2, step=20, acc=0.5)
    snapshot(ck, "latest", ck / "snapshots", run_id="thisrun")
    (folder(ck / "snapshots", "latest") / "latest.pdopt").write_bytes(b"bit rot")
    (ck / "latest.pdparams").write_bytes(b"cut")  # the engine's own: a save cut short
    s3_client.put_object(Bucket=s3_bucket, Key="refuse/s00000030-latest-aaaaaa/latest.pdparams", Body=b"x")
    save(tmp_path / "old", "iter_epoch_5", epoch=5, step=50, acc=0.9)
    snapshot(tmp_path / "old", "iter_epoch_5", tmp_path / "old" / "snaps", run_id="oldrun")
    upload_snapshot(s3, folder(tmp_path / "old" / "snaps", "iter_epoch_5"), S3Uri.parse(prefix))
    with pytest.raises(NoUsableCheckpoint) as err:
        find_resume_checkpoint(ck, S3Uri.parse(prefix), s3=s3, run_id="thisrun")
    text = str(err.value)
    assert "checksum" in text and "no _COMPLETE.json" in text and "another run (oldrun" in text
    assert "latest.pdparams is cut short" in text and "--restart" in text and err.value.exit_code == 2
    # run-state.json lost: the run named (--adopt-run), by its newest step; never any other
    found = scan_checkpoints(ck, S3Uri.parse(prefix), s3=s3)
    assert adopt_run(found, "oldrun").global_step == 50
    assert adopt_run(found, "nosuchrun") is None


def test_an_s3_error_other_than_not_found_is_raised_never_taken_for_absent(
        tmp_path: Path, s3_server: Any, s3_bucket: str) -> None:
    from rectrain.checkpoints.remote import read_remote_marker
    from rectrain.errors import StorageError
    from rectrain.storage.service import S3Service
    from rectrain.training.resume import find_resume_checkpoint

    ok = s3_server.service()
    assert read_remote_marker(ok, S3Uri.parse(f"s3://{s3_bucket}/none/{MARKER}")) is None  # 404: absent
    bad = S3Service(s3_server.endpoint_url, region="us-east-1", access_key=s3_server.access_key,
                    secret_key="wrong-secret")
    with pytest.raises(StorageError, match="secret key"):
        read_remote_marker(bad, S3Uri.parse(f"s3://{s3_bucket}/none/{MARKER}"))
    with pytest.raises(StorageError):
        find_resume_checkpoint(tmp_path / "ck", S3Uri(s3_bucket, "x"), s3=bad, run_id="r")


def test_a_run_from_before_the_new_layout_still_resumes(s3, tmp_path: Path, s3_client: Any,
                                                         s3_bucket: str, s3_env: dict) -> None:
    """Snapshots written as snapshots/<name>/ (and <prefix>/<name>/ in S3) by an older rectrain
    are still verified and resumed from: an upgrade never restarts a run."""
    from rectrain.training.resume import find_resume_checkpoint

    ck = tmp_path / "ck"
    save(ck, "latest", epoch=2, step=20, acc=0.5)
    snapshot(ck, "latest", tmp_path / "new", run_id="r")
    shutil.copytree(folder(tmp_path / "new", "latest"), ck / "snapshots" / "latest")  # old layout
    assert find_resume_checkpoint(ck, None, run_id="r") == ck / "snapshots" / "latest" / "latest"
    for path in sorted((ck / "snapshots" / "latest").iterdir()):
        s3_client.upload_file(str(path), s3_bucket, f"old/latest/{path.name}")
    fresh = tmp_path / "fresh"
    got = find_resume_checkpoint(fresh, S3Uri(s3_bucket, "old"), s3=s3, run_id="r")
    assert got == fresh / "snapshots" / "latest" / "latest"
    assert read_states(str(got) + ".states")["global_step"] == 20


def test_the_engines_own_files_are_a_checkpoint_never_thrown_away(tmp_path: Path) -> None:
    """Snapshots lost, the engine's complete ``latest.*`` kept: --resume continues from them
    (snapshotted and verified first); a save of the engine's cut short is refused (exit 2),
    never taken for "nothing there"."""
    from rectrain.training.resume import NoUsableCheckpoint, find_resume_checkpoint

    ck = tmp_path / "ck"
    save(ck, "latest", epoch=3, step=30, acc=0.5)
    got = find_resume_checkpoint(ck, None, run_id="r1")
    assert got is not None and got.parent.parent == ck / "snapshots"
    assert verify_snapshot(got.parent).global_step == 30 and verify_snapshot(got.parent).run_id == "r1"
    shutil.rmtree(ck / "snapshots")
    past = time.time() - 100
    os.utime(ck / "latest.states", (past, past))  # the next save stopped after .pdparams
    with pytest.raises(NoUsableCheckpoint, match="newer than latest.states"):
        find_resume_checkpoint(ck, None, run_id="r1")
    save(ck, "latest", epoch=3, step=30, acc=0.5)
    (ck / "latest.states").write_bytes((ck / "latest.states").read_bytes()[:-3])  # cut short
    with pytest.raises(NoUsableCheckpoint) as err:
        find_resume_checkpoint(ck, None, run_id="r1")
    assert err.value.exit_code == 2 and "latest" in str(err.value)


def test_restored_engine_files_are_never_a_resume_point(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """In a folder SageMaker's agent restored (any order, new times, each file of whichever
    save it last uploaded) the engine's files prove nothing: S3 can hold the weights of one
    save beside the state of another, all whole pickles, the state's time the newest. Such a
    mix is never resumed from (it was, whenever the restore happened to write the .states
    last), one save whose .states was restored first never stops the run (it did: exit 2),
    and an older verified snapshot is preferred to either."""
    from rectrain.training.resume import find_resume_checkpoint

    ck = tmp_path / "ck"
    save(ck, "latest", epoch=2, step=20, acc=0.5)
    snapshot(ck, "latest", ck / "snapshots", run_id="r1")
    verified = folder(ck / "snapshots", "latest")
    save(ck, "latest", epoch=3, step=30, acc=0.5)
    assert find_resume_checkpoint(ck, None, run_id="r1", engine_trusted=False) == verified / "latest"
    got = find_resume_checkpoint(ck, None, run_id="r1")  # this machine's own disk: the newest
    assert got is not None and verify_snapshot(got.parent).global_step == 30

    # nothing sealed reached S3: the weights of step 30 beside the state of step 20, the state
    # restored last (the old rule's "nothing newer than .states" holds)
    shutil.rmtree(ck / "snapshots")
    weights = (ck / "latest.pdparams").read_bytes()
    save(ck, "latest", epoch=2, step=20, acc=0.5)
    (ck / "latest.pdparams").write_bytes(weights)
    now = time.time()
    for i, suffix in enumerate((".pdparams", ".pdopt", ".states")):
        os.utime(ck / f"latest{suffix}", (now + i, now + i))
    caplog.set_level("WARNING")
    assert find_resume_checkpoint(ck, None, run_id="r1", engine_trusted=False) is None
    assert "starting from the beginning" in caplog.text and "outside sync" in caplog.text
    assert not (ck / "snapshots").exists()  # nothing snapshotted from them either
    # one whole save, restored .states first: not a reason to stop the job
    save(ck, "latest", epoch=3, step=30, acc=0.5)
    os.utime(ck / "latest.states", (now - 5, now - 5))
    assert find_resume_checkpoint(ck, None, run_id="r1", engine_trusted=False) is None


def test_each_checkpoints_bytes_go_up_once(s3_server: Any, s3_bucket: str, tmp_path: Path,
                                           s3_env: dict) -> None:
    """An epoch end saves ``latest``, ``iter_epoch_N`` and (a new best) ``best_accuracy`` from
    the same weights, and rectrain keeps ``best_of_run``: four folders, one checkpoint. Bytes
    that went up (counted by a TCP proxy in front of the server) stay within 1.1x the distinct
    checkpoints' size; the copies are made by the server, and S3 then holds every folder
    complete (checked with plain boto3)."""
    from rectrain.checkpoints.sync import CheckpointSync
    from rectrain.storage.service import S3Service
    from tests.faults.oracle import Checker
    from tests.faults.proxy import FaultProxy

    ck = tmp_path / "ck"

    def epoch_end(step: int, names: List[str]) -> int:
        ck.mkdir(parents=True, exist_ok=True)
        blobs = {".pdopt": os.urandom(600_000) + b".", ".pdparams": os.urandom(400_000) + b"."}
        for name in names:
            for suffix, blob in blobs.items():
                (ck / f"{name}{suffix}").write_bytes(blob)
            with open(ck / f"{name}.states", "wb") as fh:
                pickle.dump({"best_model_dict": {"acc": step / 100}, "epoch": step // 4,
                             "global_step": step}, fh, protocol=2)
        return sum(len(b) for b in blobs.values())

    proxy = FaultProxy(s3_server.endpoint_url).start()
    try:
        s3 = S3Service(proxy.endpoint_url)
        prefix = S3Uri.parse(f"s3://{s3_bucket}/bytes")
        sync = CheckpointSync(ck, tmp_path, s3_prefix=prefix, s3=s3, run_id="r1")
        size = epoch_end(8, ["latest", "iter_epoch_2", "best_accuracy"])
        for name in ("latest", "iter_epoch_2", "best_accuracy"):
            sync.on_save(name)
        assert sync.flush(60)
        size += epoch_end(16, ["latest"])
        sync.on_save("latest")
        assert sync.close(timeout=60) and not sync.missing()
        sent = proxy.stats().get("bytes_up", 0)
    finally:
        proxy.stop()
    assert sent <= 1.1 * size, f"{sent} bytes went up for {size} bytes of checkpoints ({sent / size:.2f}x)"
    report = Checker(s3_server.client()).check(f"s3://{s3_bucket}/bytes")
    assert not report.anomalies and report.pointer_step("latest") == 16, report.summary()
    assert report.pointer_step("best_of_run") == 8 and report.pointer_step("iter_epoch_2") == 8


def test_run_state_final_status_lands_in_its_reserved_room_on_a_full_disk(tmp_path, monkeypatch) -> None:
    """The atomic write of run-state.json failing with ENOSPC: the state is rewritten in place
    into the blocks its padding reserved (readers skip the whitespace); a state larger than the
    file still raises the disk-full error."""
    import errno
    from contextlib import contextmanager

    from rectrain.checkpoints.run_state import RunState
    from rectrain.outputs import files

    path = tmp_path / "run-state.json"
    RunState(run_id="r1", status="running").save(path)
    size = path.stat().st_size

    @contextmanager
    def full(*_a, **_k):  # noqa: ANN202
        raise OSError(errno.ENOSPC, "No space left on device")
        yield

    monkeypatch.setattr(files, "atomic_open", full)
    RunState(run_id="r1", status="failed").save(path)
    assert RunState.load(path).status == "failed" and path.stat().st_size == size
    with pytest.raises(OSError) as err:
        RunState(run_id="r1", status="failed", history=["x" * size]).save(path)
    assert err.value.errno == errno.ENOSPC and RunState.load(path).status == "failed"


def test_without_s3_an_older_folder_stays_until_a_newer_marker_is_surely_copied(
        tmp_path: Path, monkeypatch: Any) -> None:
    """An outside sync (SageMaker's) copies a marker within ``seal_after_s`` of its writing:
    until then the folder it replaces is S3's only complete one and stays, however fast the
    engine saves (epochs of a second rotated every marker out before the sync saw it)."""
    import rectrain.checkpoints.sync as sync_module

    class Clock:
        now = 1000.0
        sleep = staticmethod(time.sleep)
        time = staticmethod(time.time)

        @classmethod
        def monotonic(cls) -> float:
            return cls.now

    monkeypatch.setattr(sync_module, "time", Clock)
    ck = tmp_path / "ck"
    sync = CheckpointSync(ck, tmp_path / "run", seal_after_s=60)
    for step in (10, 20, 30):
        save(ck, "latest", epoch=step, step=step, acc=0.1)
        assert sync.on_save("latest") is not None
    snaps = ck / "snapshots"

    def complete() -> List[int]:
        return sorted(verify_snapshot(f).global_step for f in snaps.iterdir()
                      if f.is_dir() and (f / MARKER).exists())

    Clock.now += 61  # old enough: the three are sealed together; their markers are young
    assert len(sync.seal_due()) == 3
    assert complete() == [10, 20, 30]
    Clock.now += 59
    sync.seal_due()
    assert complete() == [10, 20, 30]
    Clock.now += 1  # now the sync has surely copied step 30's marker: 10 goes, the two newest stay
    sync.seal_due()
    assert complete() == [20, 30]
    assert read_pointer(snaps, "latest")[1].global_step == 30
    sync._closing = True  # noqa: SLF001 - the seal thread ends

    # a new attempt: the folders found (restored from S3, or an earlier attempt's) are copied
    again = CheckpointSync(ck, tmp_path / "run", seal_after_s=60)
    save(ck, "latest", epoch=40, step=40, acc=0.1)
    again.on_save("latest")
    Clock.now += 61
    again.seal_due()
    assert complete() == [30, 40]  # 20 older than the newest copied one (30), beyond the two newest
    assert again.close(timeout=5)
