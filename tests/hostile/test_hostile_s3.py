"""Hostile cases against a real S3 (the embedded SeaweedFS): a checkpoint pulled over a folder
rectrain did not write or over another checkpoint of that name, a pull into a path under a
file. Few on purpose (each needs the server)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tests.hostile import datasets as ds
from tests.hostile.harness import Case, run_case

USER = 2


def _pushed(tmp: Path, s3: str, endpoint: str) -> None:
    from rectrain.checkpoints.api import sync_recognition_checkpoints_to_s3

    run = ds.interrupted_run(tmp / "src")
    sync_recognition_checkpoints_to_s3(run / "checkpoints", s3, endpoint_url=endpoint)


def _user_folder(s3: str, endpoint: str):
    def setup(tmp: Path) -> None:
        _pushed(tmp, s3, endpoint)
        (tmp / "dest" / "latest").mkdir(parents=True)
        (tmp / "dest" / "latest" / "thesis-model.pdparams").write_bytes(b"my only copy")
    return setup


def _other_checkpoint(s3: str, endpoint: str):
    def setup(tmp: Path) -> None:
        _pushed(tmp, s3, endpoint)
        import shutil

        from rectrain.checkpoints.local import read_pointer, snapshot

        other = ds.interrupted_run(tmp / "newer", step=20)
        snapshot(other / "checkpoints", "latest", tmp / "snaps")  # a pulled copy: dest/latest/
        shutil.copytree(read_pointer(tmp / "snaps", "latest")[0], tmp / "dest" / "latest")
        shutil.rmtree(tmp / "snaps")
    return setup


def _older_run(s3: str, endpoint: str):
    def setup(tmp: Path) -> None:
        from rectrain.checkpoints.api import sync_recognition_checkpoints_to_s3

        newer = ds.interrupted_run(tmp / "newer", step=20)
        sync_recognition_checkpoints_to_s3(newer / "checkpoints", s3 + "-push", endpoint_url=endpoint)
        ds.interrupted_run(tmp / "older", step=8)
    return setup


def _file_in_the_way(s3: str, endpoint: str):
    def setup(tmp: Path) -> None:
        _pushed(tmp, s3, endpoint)
        (tmp / "notes.txt").write_text("notes\n", encoding="utf-8")
    return setup


def test_hostile_s3(tmp_path: Path, s3_server: Any, s3_bucket: str, s3_env: dict) -> None:
    s3 = f"s3://{s3_bucket}/runs/r1"
    env = dict(s3_env)
    endpoint = s3_server.endpoint_url
    cases = [
        Case("ckpt-pull-over-user-folder", ["ckpt", "pull", s3, "dest", "--name", "latest"],
             _user_folder(s3, endpoint), USER, ("latest", "not a complete checkpoint", "Fix:")),
        Case("ckpt-pull-over-newer-checkpoint", ["ckpt", "pull", s3, "dest", "--name", "latest"],
             _other_checkpoint(s3, endpoint), USER, ("step 20", "step 8", "Fix:")),
        Case("ckpt-push-older-over-newer", ["ckpt", "push", "older/run", s3 + "-push"],
             _older_run(s3, endpoint), USER, ("newer latest (step 20)", "step 8", "Fix:")),
        Case("s3-pull-under-a-file", ["s3", "pull", s3, "notes.txt/data"], _file_in_the_way(s3, endpoint),
             USER, ("notes.txt", "Fix:")),
    ]
    for i, case in enumerate(cases):
        folder = tmp_path / str(i)
        folder.mkdir()
        run_case(dataclasses.replace(case, env=env), folder)

