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
