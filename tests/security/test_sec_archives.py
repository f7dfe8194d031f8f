"""Archives from S3 are extracted safely everywhere (issue 25, items 4 and 7, and item 8's
"the entrypoint's extraction keeps setuid bits and modes", "unpacked datasets keep archive
permission bits"): no member lands outside its folder (``..``, a sibling folder sharing the
prefix, absolute names, through links), no device node or FIFO is created, no setuid/setgid
bit or world-writable mode comes from the archive.

Three extractors, driven as a user drives them:
- ``rectrain sagemaker download JOB`` of a ``model.tar.gz`` (the SageMaker control plane is
  the fake in fake_sagemaker.py, checked against botocore's model; the tarball is in SeaweedFS);
- the training container's entrypoint unpacking a tar in the train channel;
- ``rectrain s3 pull --unpack`` of a packed dataset whose shard a dataset writer re-wrote.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest

from tests.security.fake_sagemaker import FakeSageMaker, describe_response
from tests.security.gadgets import (
    PWNED,
    Member,
    canary,
    rectrain,
    risky_modes,
    shown,
    special_files,
    tar_bytes,
    write_contract,
)
from tests.training.tinydata import make_dataset

JOB = "thai-rec-2026-12-05-08-00-00-000"
MODEL = Member("inference.pdiparams", data=b"weights")
Escape = Callable[[Path, Path], Tuple[List[Member], Path]]

# name -> (members of the archive, the path that must not exist afterwards), given the folder
# the archive is extracted into and the test's tmp_path
ESCAPES: Dict[str, Escape] = {
    "sibling-dotdot": lambda into, tmp: (
        [MODEL, Member(f"../{into.name}-x/inject.txt", data=PWNED.encode())],
        into.parent / f"{into.name}-x" / "inject.txt"),
    "sibling-prefix-evil": lambda into, tmp: (
        [MODEL, Member(f"./../{into.name}-evil/inject.txt", data=PWNED.encode())],
        into.parent / f"{into.name}-evil" / "inject.txt"),
    "absolute": lambda into, tmp: (
        [MODEL, Member(str(canary(tmp, "absolute")), data=PWNED.encode())], canary(tmp, "absolute")),
    "symlink-then-write": lambda into, tmp: (
        [MODEL, Member("out", kind="symlink", linkname=str(canary(tmp, "via-link").parent)),
         Member("out/via-link.canary", data=PWNED.encode())], canary(tmp, "via-link")),
    "hardlink-to-outside": lambda into, tmp: (
        [MODEL, Member("linked", kind="hardlink", linkname=str(tmp / "outside-secret.txt"))],
        into / "linked"),
}
SPECIALS = ["chr", "blk", "fifo"]
MODES = [Member("tool.sh", data=b"#!/bin/sh\nexit 0\n", mode=0o4777),
         Member("shared", kind="dir", mode=0o2777), Member("shared/notes.txt", data=b"x", mode=0o666)]


# ----------------------------------------------------------------------------- sagemaker download
@pytest.fixture
def download(s3_client: Any, s3_bucket: str, env: Dict[str, str]) -> Any:
    """``download(tarball, out)``: the job's model.tar.gz is ``tarball``; runs
    ``rectrain sagemaker download JOB --out OUT``."""
    def run(tarball: bytes, out: Path) -> Any:
        key = f"jobs/{JOB}/output/model.tar.gz"
        s3_client.put_object(Bucket=s3_bucket, Key=key, Body=tarball)
        with FakeSageMaker() as sm:
            sm.add_job(JOB, describe_response(JOB, f"s3://{s3_bucket}/{key}"))
            proc = rectrain(["sagemaker", "download", JOB, "--out", out, "--region", "us-east-1"],
                            dict(env, AWS_ENDPOINT_URL_SAGEMAKER=sm.endpoint_url))
            assert sm.calls, f"the fake control plane was never called\n{shown(proc)}"
        return proc

    return run


def test_control_download_extracts_a_plain_model(download: Any, tmp_path: Path) -> None:
    proc = download(tar_bytes([MODEL, Member("model.json", data=b"{}")]), tmp_path / "job")
    assert proc.returncode == 0, shown(proc)
    assert (tmp_path / "job" / "model" / "inference.pdiparams").read_bytes() == b"weights"


@pytest.mark.parametrize("escape", sorted(ESCAPES))
def test_download_extracts_nothing_outside_the_model_folder(download: Any, tmp_path: Path,
                                                            escape: str) -> None:
    (tmp_path / "outside-secret.txt").write_text("SECRET", encoding="utf-8")
    members, target = ESCAPES[escape](tmp_path / "job" / "model", tmp_path)
    proc = download(tar_bytes(members), tmp_path / "job")
    assert not target.exists(), f"extracted {target}\n{shown(proc)}"
    assert proc.returncode != 0, shown(proc)


@pytest.mark.parametrize("kind", SPECIALS)
def test_download_creates_no_device_node_or_fifo(download: Any, tmp_path: Path, kind: str) -> None:
    proc = download(tar_bytes([MODEL, Member(f"node-{kind}", kind=kind)]), tmp_path / "job")
    made = special_files(tmp_path / "job")
    assert not made, f"the archive created {made}\n{shown(proc)}"
    assert proc.returncode != 0, shown(proc)


def test_download_keeps_no_setuid_or_world_writable_mode(download: Any, tmp_path: Path) -> None:
    """Python's ``tarfile`` data filter clears these bits and goes on; refusing is fine too."""
    proc = download(tar_bytes([MODEL] + MODES), tmp_path / "job")
    risky = risky_modes(tmp_path / "job")
    assert not risky, f"modes from the archive kept: {risky}\n{shown(proc)}"


# ----------------------------------------------------------------------------- the entrypoint
def _container(ml: Path, tarball: bytes) -> Path:
    """An /opt/ml tree whose train channel holds ``data.tar.gz`` (and no dictionary, so the
    job stops right after unpacking). Returns the folder the channel is unpacked into."""
    channel = write_contract(ml, {"preset": "crnn-mv3"})
    (channel / "data.tar.gz").write_bytes(tarball)
    return ml / "work" / "train"


def _entrypoint(ml: Path, env: Dict[str, str]) -> Any:
    return rectrain(["sagemaker", "entrypoint", "train", "--ml-root", ml],
                    dict(env, RECTRAIN_DEVICE="cpu", RECTRAIN_SCRATCH=str(ml / "work")))


@pytest.mark.parametrize("escape", sorted(ESCAPES))
def test_entrypoint_extracts_nothing_outside_its_folder(env: Dict[str, str], tmp_path: Path,
                                                        escape: str) -> None:
    (tmp_path / "outside-secret.txt").write_text("SECRET", encoding="utf-8")
    ml = tmp_path / "ml"
    members, target = ESCAPES[escape](ml / "work" / "train", tmp_path)
    _container(ml, tar_bytes(members))
    proc = _entrypoint(ml, env)
    assert not target.exists(), f"extracted {target}\n{shown(proc)}"
    assert proc.returncode != 0, shown(proc)


@pytest.mark.parametrize("kind", SPECIALS)
def test_entrypoint_creates_no_device_node_or_fifo(env: Dict[str, str], tmp_path: Path, kind: str) -> None:
    ml = tmp_path / "ml"
    _container(ml, tar_bytes([MODEL, Member(f"node-{kind}", kind=kind)]))
    proc = _entrypoint(ml, env)
    made = special_files(ml)
    assert not made, f"the archive created {made}\n{shown(proc)}"
    assert proc.returncode != 0, shown(proc)


def test_entrypoint_keeps_no_setuid_or_world_writable_mode(env: Dict[str, str], tmp_path: Path) -> None:
    ml = tmp_path / "ml"
    work = _container(ml, tar_bytes([MODEL] + MODES))
    proc = _entrypoint(ml, env)
    assert (work / "inference.pdiparams").is_file(), f"the channel was not unpacked\n{shown(proc)}"
    risky = risky_modes(work)
    assert not risky, f"modes from the archive kept: {risky}\n{shown(proc)}"


# ----------------------------------------------------------------------------- packed datasets
def _rewrite_modes(shard: Path, modes: Dict[str, int]) -> None:
    """Re-write a shard as a dataset writer can: the same bytes, other mode bits."""
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.mode = modes.get(info.name, info.mode)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    shard.write_bytes(buf.getvalue())


def _reseal_manifest(manifest: Path, shard: Path) -> None:
    """The shard's size and sha256 in the manifest's header line, as its writer would set them."""
    import hashlib
    import json

    lines = manifest.read_text(encoding="utf-8").splitlines()
    head = json.loads(lines[0])
    for entry in head["shards"]:
        if entry["path"] == shard.name:
            entry["sha256"] = hashlib.sha256(shard.read_bytes()).hexdigest()
            entry["size"] = shard.stat().st_size
    lines[0] = json.dumps(head, sort_keys=True)
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_unpacked_dataset_keeps_no_mode_from_the_shards(s3_client: Any, s3_bucket: str,
                                                        env: Dict[str, str], tmp_path: Path) -> None:
    """`s3 pull --unpack` of a packed dataset whose shard gives a label file mode 4777 and an
    image 0777 (contents unchanged; the writer reseals the shard's checksum in the manifest)."""
    data = make_dataset(tmp_path / "src")
    packed = tmp_path / "packed"
    proc = rectrain(["data", "pack", data["root"], "-o", packed, "--no-progress"], env)
    assert proc.returncode == 0, shown(proc)
    shards = sorted(packed.glob("*.tar"))
    assert shards, sorted(p.name for p in packed.iterdir())
    _rewrite_modes(shards[0], {"train.txt": 0o4777, "images/img_000.png": 0o777})
    _reseal_manifest(packed / "manifest.jsonl", shards[0])  # a prefix writer rewrites the manifest too
    for path in sorted(packed.iterdir()):
        s3_client.put_object(Bucket=s3_bucket, Key=f"datasets/thai/{path.name}", Body=path.read_bytes())
    dest = tmp_path / "pulled"
    proc = rectrain(["s3", "pull", f"s3://{s3_bucket}/datasets/thai", dest, "--unpack",
                     "--no-progress"], env)
    assert proc.returncode == 0, shown(proc)
    assert (dest / "train.txt").read_bytes() == data["train"].read_bytes()
    risky = risky_modes(dest)
    assert not risky, f"modes from the shard kept: {risky}\n{shown(proc)}"
