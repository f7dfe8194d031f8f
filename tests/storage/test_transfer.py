from __future__ import annotations

import pytest

from rectrain.errors import DataError, IntegrityError, StorageError
from rectrain.storage.manifest import MANIFEST_NAME, Manifest, check_relpath
from rectrain.storage.objects import delete_prefix, download_file, list_objects, upload_file
from rectrain.storage.pull import pull
from rectrain.storage.push import push
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import S3Service

from .helpers import make_tree, tree_digest


def test_round_trip_is_exact_and_second_push_transfers_nothing(s3, s3_client, s3_bucket, tmp_path):
    src = tmp_path / "src"
    files = make_tree(src)
    uri = f"s3://{s3_bucket}/datasets/thai"
    first = push(s3, src, S3Uri.parse(uri), progress=False)
    assert first.transferred == len(files) and first.skipped == 0
    keys = {o.key for o in list_objects(s3, S3Uri.parse(uri))}
    assert f"datasets/thai/{MANIFEST_NAME}" in keys
    assert "datasets/thai/images/ชุดที่1/img_001.png" in keys
    manifest = Manifest.parse(
        s3_client.get_object(Bucket=s3_bucket, Key=f"datasets/thai/{MANIFEST_NAME}")["Body"].read().decode()
    )
    assert {e.path for e in manifest.entries} == set(files)

    second = push(s3, src, S3Uri.parse(uri), progress=False)
    assert second.transferred == 0 and second.skipped == len(files)

    dst = tmp_path / "dst"
    got = pull(s3, S3Uri.parse(uri), dst, progress=False)
    assert got.transferred == len(files)
    expected = tree_digest(src)
    expected.pop("empty_dir")  # a plain (unpacked) upload carries files only
    pulled = tree_digest(dst)
    assert pulled.pop(MANIFEST_NAME)  # the dataset's manifest comes along
    assert pulled == expected
    again = pull(s3, S3Uri.parse(uri), dst, progress=False)
    assert again.transferred == 0 and again.skipped == len(files)


def test_changed_file_is_uploaded_again_and_manifest_follows(s3, s3_client, s3_bucket, tmp_path):
    src = tmp_path / "src"
    make_tree(src, files=6)
    uri = f"s3://{s3_bucket}/ds"
    push(s3, src, S3Uri.parse(uri), progress=False)
    target = src / "images/img_003.png"
    target.write_bytes(b"x" * target.stat().st_size)  # same size, new content
    result = push(s3, src, S3Uri.parse(uri), progress=False)
    assert result.transferred == 1
    body = s3_client.get_object(Bucket=s3_bucket, Key="ds/images/img_003.png")["Body"].read()
    assert body == target.read_bytes()
    manifest = Manifest.parse(
        s3_client.get_object(Bucket=s3_bucket, Key=f"ds/{MANIFEST_NAME}")["Body"].read().decode()
    )
    import hashlib

    assert manifest.by_path()["images/img_003.png"].sha256 == hashlib.sha256(target.read_bytes()).hexdigest()


def test_dry_run_changes_nothing(s3, s3_client, s3_bucket, tmp_path):
    src = tmp_path / "src"
    files = make_tree(src, files=5)
    uri = f"s3://{s3_bucket}/dry"
    result = push(s3, src, S3Uri.parse(uri), dry_run=True, progress=False)
    assert result.dry_run and result.transferred == len(files)
    assert list_objects(s3, S3Uri.parse(uri)) == []
    push(s3, src, S3Uri.parse(uri), progress=False)
    dst = tmp_path / "dst"
    planned = pull(s3, S3Uri.parse(uri), dst, dry_run=True, progress=False)
    assert planned.transferred == len(files) and not dst.exists()


def test_delete_only_when_asked(s3, s3_client, s3_bucket, tmp_path):
    src = tmp_path / "src"
    make_tree(src, files=4)
    uri = f"s3://{s3_bucket}/del"
    push(s3, src, S3Uri.parse(uri), progress=False)
    (src / "dict.txt").unlink()
    push(s3, src, S3Uri.parse(uri), progress=False)
    keys = {o.key for o in list_objects(s3, S3Uri.parse(uri))}
    assert "del/dict.txt" in keys  # kept: --delete was not given
    result = push(s3, src, S3Uri.parse(uri), delete=True, progress=False)
    assert result.deleted == 1
    assert "del/dict.txt" not in {o.key for o in list_objects(s3, S3Uri.parse(uri))}

    dst = tmp_path / "dst"
    pull(s3, S3Uri.parse(uri), dst, progress=False)
    (dst / "local-extra.txt").write_text("mine")
    pull(s3, S3Uri.parse(uri), dst, progress=False)
    assert (dst / "local-extra.txt").exists()
    result = pull(s3, S3Uri.parse(uri), dst, delete=True, progress=False)
    assert result.deleted == 1 and not (dst / "local-extra.txt").exists()


def test_prefix_is_a_folder_not_a_string_prefix(s3, s3_client, s3_bucket, tmp_path):
    s3_client.put_object(Bucket=s3_bucket, Key="data/a.txt", Body=b"a")
    s3_client.put_object(Bucket=s3_bucket, Key="data2/b.txt", Body=b"b")
    assert [o.key for o in list_objects(s3, S3Uri.parse(f"s3://{s3_bucket}/data"))] == ["data/a.txt"]
    result = pull(s3, S3Uri.parse(f"s3://{s3_bucket}/data"), tmp_path / "d", progress=False)
    assert result.transferred == 1 and (tmp_path / "d/a.txt").read_bytes() == b"a"


@pytest.mark.parametrize(
    "bad_rel", ["../escape.txt", "a/../../escape.txt", "/etc/passwd", "a//b", "./a", "C:/x", ""]
)
def test_keys_escaping_the_destination_are_refused(tmp_path, bad_rel):
    """SeaweedFS itself refuses such keys, so the planner is fed a listing as AWS S3 could return it."""
    from rectrain.storage.pull import _plan_pull
    from rectrain.storage.s3 import S3Uri

    remote = [("fine.txt", 2, "x", "data/fine.txt"), (bad_rel, 4, "y", "data/" + bad_rel)]
    with pytest.raises(DataError) as info:
        _plan_pull(S3Uri.parse("s3://bucket/data"), remote)
    assert "outside" in str(info.value)
    with pytest.raises(DataError):
        check_relpath(bad_rel)


def test_manifest_with_escaping_path_is_refused():
    line = '{"path": "../../.bashrc", "size": 1, "sha256": "%s"}' % ("0" * 64)
    with pytest.raises(DataError) as info:
        Manifest.parse(line, "s3://b/ds/manifest.jsonl")
    assert "manifest.jsonl:1" in str(info.value)


def test_altered_object_is_detected_on_pull_and_never_kept(s3, s3_server, s3_client, s3_bucket, tmp_path):
    """The bytes of an uploaded object are changed behind S3's back (through SeaweedFS's filer,
    with a token signed by the server's own filer key: without one the filer refuses, issue 25):
    the pull must fail with IntegrityError and leave no file (nor temporary file) behind."""
    import urllib.request

    src = tmp_path / "src"
    make_tree(src, files=4)
    uri = f"s3://{s3_bucket}/alt"
    push(s3, src, S3Uri.parse(uri), progress=False)
    key = "alt/images/img_003.png"
    original = (src / "images/img_003.png").read_bytes()
    tampered = bytes([original[0] ^ 0xFF]) + original[1:]
    request = urllib.request.Request(
        f"{s3_server.filer_url}/buckets/{s3_bucket}/{key}", data=tampered, method="PUT",
        headers=s3_server.filer_headers(),
    )
    urllib.request.urlopen(request, timeout=10).close()
    assert s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == tampered

    dst = tmp_path / "dst"
    with pytest.raises(IntegrityError) as info:
        pull(s3, S3Uri.parse(uri), dst, progress=False, workers=1)
    assert "img_003.png" in str(info.value)
    assert not (dst / "images/img_003.png").exists()
    assert not list(dst.rglob("*.rectrain-part"))
    assert not (dst / MANIFEST_NAME).exists()  # an incomplete download never looks finished


def test_object_changed_without_manifest_is_caught_by_its_checksum(s3, s3_client, s3_bucket, tmp_path):
    src = tmp_path / "ckpt"
    src.mkdir()
    (src / "model.pdparams").write_bytes(b"weights" * 100)
    push(s3, src, S3Uri.parse(f"s3://{s3_bucket}/ckpt"), progress=False, manifest=False)
    head = s3_client.head_object(Bucket=s3_bucket, Key="ckpt/model.pdparams")
    # bit rot with the metadata left as it was
    s3_client.put_object(
        Bucket=s3_bucket, Key="ckpt/model.pdparams", Body=b"WEIGHTS" * 100, Metadata=head["Metadata"]
    )
    with pytest.raises(IntegrityError):
        download_file(s3, S3Uri.parse(f"s3://{s3_bucket}/ckpt/model.pdparams"), tmp_path / "out.pdparams")
    assert not (tmp_path / "out.pdparams").exists()


def test_upload_and_download_single_file(s3, s3_client, s3_bucket, tmp_path):
    path = tmp_path / "best_accuracy.pdparams"
    path.write_bytes(b"\x00\x01" * 5000)
    upload_file(s3, path, S3Uri.parse(f"s3://{s3_bucket}/runs/r1/"))
    head = s3_client.head_object(Bucket=s3_bucket, Key="runs/r1/best_accuracy.pdparams")
    assert len(head["Metadata"]["sha256"]) == 64
    download_file(s3, S3Uri.parse(f"s3://{s3_bucket}/runs/r1/best_accuracy.pdparams"), tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == path.read_bytes()
    assert delete_prefix(s3, S3Uri.parse(f"s3://{s3_bucket}/runs")) == 1
    assert list_objects(s3, S3Uri.parse(f"s3://{s3_bucket}/runs")) == []


def test_missing_bucket_and_missing_prefix_are_clear(s3, s3_client, tmp_path):
    src = tmp_path / "src"
    make_tree(src, files=2)
    with pytest.raises(StorageError) as info:
        push(s3, src, S3Uri.parse("s3://no-such-bucket-here/x"), progress=False)
    assert "no-such-bucket-here" in str(info.value) and "does not exist" in str(info.value)


def test_nothing_at_prefix(s3, s3_client, s3_bucket, tmp_path):
    with pytest.raises(StorageError) as info:
        pull(s3, S3Uri.parse(f"s3://{s3_bucket}/nothing/here"), tmp_path / "d", progress=False)
    assert "Nothing found" in str(info.value)


def test_wrong_credentials_and_unreachable_endpoint(s3_server, s3_env, s3_bucket, tmp_path):
    bad = S3Service(s3_server.endpoint_url, region="us-east-1", access_key=s3_server.access_key,
                    secret_key="wrong")
    with pytest.raises(StorageError) as info:
        list_objects(bad, S3Uri.parse(f"s3://{s3_bucket}/x"))
    assert "secret key" in str(info.value)
    from rectrain.storage.server import free_ports

    nowhere = S3Service(f"http://127.0.0.1:{free_ports(1)[0]}", max_attempts=1, connect_timeout=1,
                        retry_budget_s=2)  # the retry policy has its own test (test_retry.py)
    with pytest.raises(StorageError) as info:
        list_objects(nowhere, S3Uri.parse(f"s3://{s3_bucket}/x"))
    assert "Cannot reach" in str(info.value)


def test_fast_get_path_reads_object_and_metadata(s3, s3_client, s3_bucket, tmp_path):
    from rectrain.storage.fastpath import FastPath

    path = tmp_path / "a.bin"
    path.write_bytes(b"abc" * 1000)
    upload_file(s3, path, S3Uri.parse(f"s3://{s3_bucket}/f/a.bin"))
    fast = FastPath(s3_client)
    got = fast.get(s3_bucket, "f/a.bin")
    assert got is not None
    fields, body = got
    assert len(fields["Metadata"]["sha256"]) == 64
    assert b"".join(body.iter_chunks(1024)) == path.read_bytes()
    assert fast.get(s3_bucket, "f/missing.bin") is None  # errors go back to the regular client


def test_large_files_upload_a_few_at_a_time(s3, s3_bucket, tmp_path, monkeypatch):
    """64 threads send small files; files big enough for parallel parts go up at most
    LARGE_AT_ONCE at a time (each has its own part threads and buffers)."""
    import threading
    import time

    from rectrain.storage import objects
    from rectrain.storage import push as push_module

    monkeypatch.setattr(objects, "SMALL_FILE", 100)  # every file below counts as large
    now = {"in": 0, "max": 0}
    lock = threading.Lock()
    real = push_module.put_object

    def counting(*args, **kwargs):
        with lock:
            now["in"] += 1
            now["max"] = max(now["max"], now["in"])
        time.sleep(0.02)
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                now["in"] -= 1

    monkeypatch.setattr(push_module, "put_object", counting)
    src = tmp_path / "src"
    for i in range(40):
        (src / f"f{i:02d}.bin").parent.mkdir(parents=True, exist_ok=True)
        (src / f"f{i:02d}.bin").write_bytes(bytes([i]) * 300)
    result = push(s3, src, S3Uri.parse(f"s3://{s3_bucket}/large"), workers=64, progress=False, manifest=False)
    assert result.transferred == 40
    assert 1 <= now["max"] <= push_module.LARGE_AT_ONCE


def test_files_over_the_in_memory_size_stream_and_stay_verified(s3, s3_client, s3_bucket, tmp_path,
                                                                monkeypatch):
    """Files over objects.IN_MEMORY go up in one PUT read from the file (never read whole: a
    label file of millions of crops would be the push's peak memory), with the SHA-256 checked
    by the server: a file that changes after it was hashed is refused, nothing is stored."""
    import hashlib
    from pathlib import Path

    from rectrain.storage import objects
    from rectrain.storage import push as push_module

    monkeypatch.setattr(objects, "IN_MEMORY", 1000)  # 5 KB counts as "over", as 300 KB would
    src = tmp_path / "src"
    src.mkdir()
    (src / "labels.txt").write_bytes(b"images/a.png\tx\n" * 400)
    (src / "small.png").write_bytes(b"p" * 100)
    read_whole = []
    real_read = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read_whole.append(self.name) or real_read(self))
    push(s3, src, S3Uri.parse(f"s3://{s3_bucket}/medium"), progress=False, manifest=False)
    assert read_whole == ["small.png"]
    got = s3_client.get_object(Bucket=s3_bucket, Key="medium/labels.txt")
    body = got["Body"].read()
    assert body == (src / "labels.txt").read_bytes()
    assert got["Metadata"]["sha256"] == hashlib.sha256(body).hexdigest()

    real_put = push_module.put_object

    def altered_after_hashing(*args, **kwargs):
        (src / "labels.txt").write_bytes(b"images/b.png\ty\n" * 400)  # same size, other bytes
        return real_put(*args, **kwargs)

    monkeypatch.setattr(push_module, "put_object", altered_after_hashing)
    with pytest.raises(IntegrityError, match="changed while"):
        push(s3, src, S3Uri.parse(f"s3://{s3_bucket}/medium2"), progress=False, manifest=False)
    assert "Contents" not in s3_client.list_objects_v2(Bucket=s3_bucket, Prefix="medium2/labels.txt")
