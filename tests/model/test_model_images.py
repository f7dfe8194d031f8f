"""Images are decoded as the training config decoded them (no engine needed)."""

from __future__ import annotations

import pytest
from PIL import Image

from rectrain.errors import DataError
from rectrain.model.predict import expand_images, read_image


def test_channel_order_follows_the_training_decode(tmp_path):
    path = tmp_path / "สวัสดี.png"  # a Thai file name
    Image.new("RGB", (4, 2), (255, 0, 0)).save(path)  # pure red
    assert tuple(read_image(path, {"img_mode": "BGR"})[0, 0]) == (0, 0, 255)
    assert tuple(read_image(path)[0, 0]) == (0, 0, 255)  # what the engine's inference assumes
    # A config without img_mode trained on RGB (DecodeImage's default): feed RGB.
    assert tuple(read_image(path, {"img_mode": "RGB"})[0, 0]) == (255, 0, 0)


def test_unreadable_images_name_the_file(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError, match="bad.png"):
        read_image(bad)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty.png"):
        read_image(empty)


def test_folders_expand_to_their_images(tmp_path):
    for name in ("b.png", "a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in expand_images([str(tmp_path)])] == ["a.jpg", "b.png"]
