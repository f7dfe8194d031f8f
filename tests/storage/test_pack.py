from __future__ import annotations

import io
import tarfile

import pytest

from rectrain.errors import ConfigError, DataError, IntegrityError, RectrainError
from rectrain.storage.manifest import MANIFEST_NAME, Manifest
from rectrain.storage.objects import list_objects
from rectrain.storage.pack import pack_dataset, parse_size
from rectrain.storage.pull import pull, unpack_dataset
from rectrain.storage.push import push
from rectrain.storage.s3 import S3Uri

from .helpers import make_tree, tree_digest


def test_parse_size():
    assert parse_size("128MB") == 128_000_000
    assert parse_size("1.5 GB") == 1_500_000_000
    assert parse_size("64MiB") == 64 * 1024 * 1024
    assert parse_size("4096") == 4096
    with pytest.raises(ConfigError):
        parse_size("big")
    with pytest.raises(ConfigError):
        parse_size("10B")


def test_pack_unpack_round_trip_is_the_exact_tree(tmp_path):
    src = tmp_path / "src"
    files = make_tree(src, files=30, size=900)
    packed = tmp_path / "packed"
    result = pack_dataset(src, packed, "8KB", progress=False)
    assert len(result.shards) > 2 and result.files == len(files)
    assert sorted(p.name for p in packed.iterdir()) == sorted(result.shards + [MANIFEST_NAME])
    manifest = Manifest.read(packed / MANIFEST_NAME)
    assert manifest.kind == "packed" and manifest.dirs == ["empty_dir"]
    with tarfile.open(packed / result.shards[0]) as tar:  # plain tar files, UTF-8 names
        assert all(m.isfile() for m in tar.getmembers())
    out = tmp_path / "out"
    info = unpack_dataset(packed, out, progress=False)
    assert info["shards_extracted"] == len(result.shards)
    assert tree_digest(out) == tree_digest(src)
    again = unpack_dataset(packed, out, progress=False)
    assert again["shards_extracted"] == 0


def test_repack_removes_stale_shards(tmp_path):
    src = tmp_path / "src"
    make_tree(src, files=20)
    packed = tmp_path / "packed"
    many = pack_dataset(src, packed, "4KB", progress=False)
    few = pack_dataset(src, packed, "1MB", progress=False)
    assert len(few.shards) == 1 < len(many.shards)
    assert sorted(p.name for p in packed.iterdir()) == ["manifest.jsonl", "shard-00000.tar"]


def test_pack_refuses_output_inside_the_dataset(tmp_path):
    src = tmp_path / "src"
    make_tree(src, files=2)
    with pytest.raises(DataError):
        pack_dataset(src, src / "packed", progress=False)


def test_damaged_shard_member_is_refused_and_not_kept(tmp_path):
    src = tmp_path / "src"
    make_tree(src, files=3)
    packed = tmp_path / "packed"
    result = pack_dataset(src, packed, "1MB", progress=False)
    shard = packed / result.shards[0]
    data = bytearray(shard.read_bytes())
    # flip a byte inside the first member's data (just after its header blocks)
    with tarfile.open(shard) as tar:
        first = tar.getmembers()[0]
    data[first.offset_data + 10] ^= 0xFF
    shard.write_bytes(bytes(data))
    out = tmp_path / "out"
    with pytest.raises(IntegrityError) as info:
        unpack_dataset(packed, out, progress=False, workers=1)
    assert first.name in str(info.value)
    assert not (out / first.name).exists()
    assert not list(out.rglob("*.rectrain-part"))


def test_shard_with_unlisted_or_escaping_member_is_refused(tmp_path):
    src = tmp_path / "src"
    make_tree(src, files=2)
    packed = tmp_path / "packed"
    result = pack_dataset(src, packed, "1MB", progress=False)
    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("../evil.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    (packed / result.shards[0]).write_bytes(evil.getvalue())
    out = tmp_path / "out"
    with pytest.raises(IntegrityError):
        unpack_dataset(packed, out, progress=False)
    assert not (tmp_path / "evil.txt").exists()


def test_packed_push_and_pull_unpack(s3, s3_client, s3_bucket, tmp_path):
    src = tmp_path / "src"
    make_tree(src, files=40, size=1500)
    packed = tmp_path / "packed"
    result = pack_dataset(src, packed, "16KB", progress=False)
    uri = f"s3://{s3_bucket}/packed/thai"
    pushed = push(s3, packed, S3Uri.parse(uri), progress=False)
    assert pushed.packed and pushed.transferred == len(result.shards)
    keys = sorted(o.key.rsplit("/", 1)[1] for o in list_objects(s3, S3Uri.parse(uri)))
    assert keys == sorted(result.shards + [MANIFEST_NAME])

    out = tmp_path / "out"
    pulled = pull(s3, S3Uri.parse(uri), out, unpack=True, progress=False, workers=3)
    assert pulled.packed and pulled.transferred == result.files
    assert tree_digest(out) == tree_digest(src)  # exactly the original tree, nothing more
    again = pull(s3, S3Uri.parse(uri), out, unpack=True, progress=False)
    assert again.transferred == 0 and again.skipped == result.files

    raw = tmp_path / "raw"
    plain = pull(s3, S3Uri.parse(uri), raw, progress=False)  # without --unpack: the shards themselves
    assert plain.transferred == len(result.shards)
    assert tree_digest(raw) == tree_digest(packed)


def test_api_names_round_trip_packed(s3_server, s3, s3_bucket, tmp_path):
    import rectrain

    src = tmp_path / "src"
    make_tree(src, files=12)
    up = rectrain.upload_recognition_data_to_s3(
        src,
        f"s3://{s3_bucket}/api",
        packed=True,
        shard_size="4KB",
        progress=False,
        s3=s3,
    )
    assert up["packed"] and up["shards"] > 1
    down = rectrain.download_recognition_data_from_s3(
        f"s3://{s3_bucket}/api", tmp_path / "out", progress=False, s3=s3
    )
    assert down["packed"] and tree_digest(tmp_path / "out") == tree_digest(src)


def _shard_with(tmp_path, members):
    """A packed dataset whose only shard holds ``members`` [(TarInfo, bytes)], listed in its manifest."""
    import hashlib

    src = tmp_path / "src"
    make_tree(src, files=2)
    packed = tmp_path / "packed"
    result = pack_dataset(src, packed, "1MB", progress=False)
    shard = result.shards[0]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    (packed / shard).write_bytes(buf.getvalue())
    entries = [{"path": info.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                "shard": shard} for info, data in members]
    manifest = Manifest.parse((packed / MANIFEST_NAME).read_text())
    import json

    header = json.loads((packed / MANIFEST_NAME).read_text().splitlines()[0])
    header["files"] = len(entries)
    header["shards"][0]["sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
    lines = [json.dumps(header)] + [json.dumps(e) for e in sorted(entries, key=lambda e: e["path"])]
    (packed / MANIFEST_NAME).write_text("\n".join(lines) + "\n")
    assert manifest.kind == "packed"
    return packed


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE])
def test_links_fifos_and_devices_in_a_shard_are_refused(tmp_path, kind):
    ok = tarfile.TarInfo("a.txt")
    ok.size = 2
    odd = tarfile.TarInfo("b.txt")
    odd.type = kind
    odd.linkname = "/etc/passwd"
    packed = _shard_with(tmp_path, [(ok, b"ok"), (odd, b"")])
    with pytest.raises(IntegrityError) as info:
        unpack_dataset(packed, tmp_path / "out", progress=False, workers=1)
    assert "b.txt" in str(info.value) and "refused" in str(info.value)
    assert not (tmp_path / "out" / "b.txt").exists() and not (tmp_path / "out" / "b.txt").is_symlink()


def test_no_mode_or_setuid_is_taken_from_the_archive(tmp_path):
    info = tarfile.TarInfo("run.sh")
    info.size = 4
    info.mode = 0o6777  # setuid, setgid, world-writable
    packed = _shard_with(tmp_path, [(info, b"echo")])
    unpack_dataset(packed, tmp_path / "out", progress=False, workers=1)
    mode = (tmp_path / "out" / "run.sh").stat().st_mode
    assert not mode & 0o7000 and not mode & 0o002 and (tmp_path / "out" / "run.sh").read_bytes() == b"echo"


def test_parallel_unpack_of_many_files_any_member_order(tmp_path):
    """Worker processes split a shard between them; members in another order than the manifest
    (a shard packed by another tool) are matched all the same; the tree is exact."""
    from rectrain.storage.extract import IN_PROCESS_BELOW

    src = tmp_path / "src"
    count = IN_PROCESS_BELOW + 500
    for i in range(count):
        path = src / f"d{i % 7}" / f"f-{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(i.to_bytes(4, "big") * 3)
    packed = tmp_path / "packed"
    pack_dataset(src, packed, "128MB", progress=False)
    out = tmp_path / "out"
    unpack_dataset(packed, out, progress=False, workers=2)
    assert tree_digest(out) == tree_digest(src)
    shard = next(packed.glob("shard-*.tar"))  # the same members, in reverse order
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(shard, "w", format=tarfile.PAX_FORMAT) as tar:
        for member, data in reversed(members):
            tar.addfile(member, io.BytesIO(data))
    out2 = tmp_path / "out2"
    unpack_dataset(packed, out2, progress=False, workers=2)
    assert tree_digest(out2) == tree_digest(src)


def test_parallel_unpack_of_several_shards_and_a_full_disk_in_a_worker(tmp_path, monkeypatch):
    """Several shards go to the workers at once (no wait between shards) and the tree is exact;
    a worker that cannot write (a full disk) surfaces as that OSError, not as a damaged dataset."""
    import errno

    from rectrain.storage import extract

    src = tmp_path / "src"
    for i in range(extract.IN_PROCESS_BELOW + 500):
        path = src / f"d{i % 3}" / f"f-{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(i.to_bytes(4, "big") * 3)
    packed = tmp_path / "packed"
    pack_dataset(src, packed, "1300KB", progress=False)
    assert len(list(packed.glob("shard-*.tar"))) == 2
    unpack_dataset(packed, tmp_path / "out", progress=False, workers=2)
    assert tree_digest(tmp_path / "out") == tree_digest(src)

    def full(name, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", name)

    monkeypatch.setattr(extract, "write_new_file", full)  # the workers are forked after this
    with pytest.raises(OSError) as caught:
        unpack_dataset(packed, tmp_path / "out2", progress=False, workers=2)
    assert caught.value.errno == errno.ENOSPC and not isinstance(caught.value, RectrainError)


def test_shards_depend_on_contents_only_and_a_recorded_time_is_kept(tmp_path):
    """Touching the files does not change the shards (pack records no time; a push after a copy
    sends nothing); unpack sets no time for them, but keeps one another packer recorded."""
    import os
    import time

    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "a.png").write_bytes(b"a" * 100)
    (src / "b.png").write_bytes(b"b" * 10)
    pack_dataset(src, tmp_path / "p1", "128MB", progress=False)
    for path in (src / "d" / "a.png", src / "b.png"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    pack_dataset(src, tmp_path / "p2", "128MB", progress=False)
    for name in ("manifest.jsonl", "shard-00000.tar"):
        assert (tmp_path / "p1" / name).read_bytes() == (tmp_path / "p2" / name).read_bytes()
    with tarfile.open(tmp_path / "p1" / "shard-00000.tar") as tar:
        assert {m.mtime for m in tar.getmembers()} == {0}
    before = time.time() - 5
    unpack_dataset(tmp_path / "p1", tmp_path / "out", progress=False, workers=1)
    assert (tmp_path / "out" / "d" / "a.png").stat().st_mtime >= before
    shard = tmp_path / "p1" / "shard-00000.tar"  # the same members, with times (another packer)
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(shard, "w", format=tarfile.PAX_FORMAT) as tar:
        for member, data in members:
            member.mtime = 1_234_567_890
            tar.addfile(member, io.BytesIO(data))
    unpack_dataset(tmp_path / "p1", tmp_path / "out2", progress=False, workers=1)
    assert (tmp_path / "out2" / "d" / "a.png").stat().st_mtime == 1_234_567_890
