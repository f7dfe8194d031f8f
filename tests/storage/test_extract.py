"""The strict tar reader of rectrain.storage.extract: workers skip to their share by header type
and size only, and land on the same member a full read does (PAX, GNU long names, folders)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from rectrain.errors import IntegrityError
from rectrain.storage.extract import iter_members, skip_members


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_skipping_lands_where_a_full_read_does(tmp_path: Path, fmt: int) -> None:
    shard = tmp_path / "s.tar"
    names = ["a.png", "ภาพ/สวัสดี.png", "d/" + "x" * 150 + ".png", "e.png", "ภ" * 60 + ".png"]
    with tarfile.open(shard, "w", format=fmt) as tar:
        for i, name in enumerate(names):
            if i == 2:
                folder = tarfile.TarInfo("d")
                folder.type = tarfile.DIRTYPE
                tar.addfile(folder)
            info = tarfile.TarInfo(name)
            data = bytes([i]) * (700 * i + 1)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with open(shard, "rb") as fh:
        files = [m for m in iter_members(fh, "s.tar") if m.kind != b"5"]
    assert [m.name for m in files] == names
    assert [m.data for m in files] == [bytes([i]) * (700 * i + 1) for i in range(len(names))]
    for k in range(len(names)):
        with open(shard, "rb") as fh:
            skip_members(fh, k, "s.tar")
            first = next(m for m in iter_members(fh, "s.tar") if m.kind != b"5")
        assert (first.name, first.offset, first.size) == (files[k].name, files[k].offset, files[k].size)
    with open(shard, "rb") as fh, pytest.raises(IntegrityError, match="fewer members"):
        skip_members(fh, len(names) + 1, "s.tar")


def test_a_damaged_header_is_refused(tmp_path: Path) -> None:
    shard = tmp_path / "s.tar"
    with tarfile.open(shard, "w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("a.png")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    raw = bytearray(shard.read_bytes())
    raw[0] = ord("b")  # the name changes, the checksum does not
    shard.write_bytes(bytes(raw))
    with open(shard, "rb") as fh, pytest.raises(IntegrityError, match="checksum"):
        list(iter_members(fh, "s.tar"))


def test_large_members_are_streamed_checked_and_refused_when_damaged(tmp_path: Path, monkeypatch) -> None:
    """Members over IN_MEMORY are not read with their header but streamed from the shard (in this
    process), checked all the same; a damaged one is never written."""
    from rectrain.storage import extract
    from rectrain.storage.pack import pack_dataset
    from rectrain.storage.pull import unpack_dataset

    monkeypatch.setattr(extract, "IN_MEMORY", 16)
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    for i in range(3):
        (src / "d" / f"f{i}.bin").write_bytes(bytes([i]) * (10 + 20 * i))
    pack_dataset(src, tmp_path / "packed", progress=False)
    unpack_dataset(tmp_path / "packed", tmp_path / "out", progress=False, workers=1)
    assert [(tmp_path / "out" / "d" / f"f{i}.bin").read_bytes() for i in range(3)] == \
        [bytes([i]) * (10 + 20 * i) for i in range(3)]
    shard = next((tmp_path / "packed").glob("shard-*.tar"))
    raw = bytearray(shard.read_bytes())
    raw[raw.index(bytes([2]) * 50) + 5] ^= 0xFF  # the largest member's data
    shard.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match="f2.bin"):
        unpack_dataset(tmp_path / "packed", tmp_path / "out2", progress=False, workers=1)
    assert not (tmp_path / "out2" / "d" / "f2.bin").exists()
    assert not list((tmp_path / "out2").rglob("*part*"))


@pytest.mark.parametrize("count,parts", [(100_001, 2), (1024, 2), (50_000, 8), (7, 3), (5, 1)])
def test_shares_cover_every_member_once_later_ones_smaller(count: int, parts: int) -> None:
    from rectrain.storage.extract import shares

    bounds = shares(count, parts)
    sizes = [b - a for a, b in zip(bounds, bounds[1:])]
    assert bounds[0] == 0 and bounds[-1] == count and len(sizes) == parts
    assert all(s >= 0 for s in sizes)
    assert count < 1000 or sizes == sorted(sizes, reverse=True)  # (rounding aside, for tiny counts)
