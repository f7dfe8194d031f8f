from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from rectrain.cli.main import main
from rectrain.data.convert import convert_detection_to_recognition_format

# Boxes of solid, distinct colours on a grey page: a crop must come out with the box's colour
# and size. (points clockwise from top-left, text, difficult, colour BGR)
BOXES = [
    ([[10, 10], [110, 10], [110, 40], [10, 40]], "สวัสดี", False, (0, 0, 255)),
    ([[150, 20], [190, 20], [190, 140], [150, 140]], "vertical", False, (0, 255, 0)),  # tall: rotated
    ([[20, 100], [120, 100], [120, 130], [20, 130]], "###", False, (255, 0, 0)),
    ([[20, 160], [80, 160], [80, 190], [20, 190]], "hard", True, (255, 255, 0)),
    ([[130, 170], [130, 190], [190, 190], [190, 170]], "ccw", False, (0, 255, 255)),  # counter-clockwise
    ([[195, 150], [215, 150], [215, 200], [195, 200]], "กี่", False, (255, 0, 255)),  # tall, one character
]


def _page(path):
    img = np.full((220, 220, 3), 128, np.uint8)
    for pts, _, _, color in BOXES:
        cv2.fillPoly(img, [np.int32(pts)], color)
    cv2.imwrite(str(path), img)


def _check(summary, out):
    assert summary["kept"] == 4 and summary["boxes"] == 6
    assert summary["skipped"] == {"difficult": 1, "do-not-care": 1}
    lines = (out / "labels.txt").read_text(encoding="utf-8").splitlines()
    assert [line.split("\t")[1] for line in lines] == ["สวัสดี", "vertical", "ccw", "กี่"]
    crops = [cv2.imread(str(out / line.split("\t")[0])) for line in lines]
    assert crops[0].shape[:2] == (30, 100)
    assert crops[1].shape[:2] == (40, 120)  # 40x120 box, h >= 1.5 w: rotated to lie flat
    assert crops[2].shape[:2] == (20, 60)
    assert crops[3].shape[:2] == (50, 20)  # tall only because of stacked marks: not rotated
    for crop, (_, _, _, color) in zip(crops, [BOXES[0], BOXES[1], BOXES[4], BOXES[5]]):
        inner = crop[3:-3, 3:-3].reshape(-1, 3).mean(axis=0)
        assert np.allclose(inner, color, atol=3), (inner, color)


def test_ppocrlabel(tmp_path):
    folder = tmp_path / "train_images"
    folder.mkdir()
    _page(folder / "page1.png")
    ann = [{"transcription": t, "points": p, "difficult": d} for p, t, d, _ in BOXES]
    (folder / "Label.txt").write_text(
        f"train_images/page1.png\t{json.dumps(ann, ensure_ascii=False)}\n"
        "train_images/page1.png\tnot json\n", encoding="utf-8")
    out = tmp_path / "rec"
    summary = convert_detection_to_recognition_format(folder / "Label.txt", out)
    assert summary["bad_annotation_lines"] == 1
    _check(summary, out)
    names = sorted(p.name for p in (out / "images").iterdir())
    assert names == ["train_images_page1_000.png", "train_images_page1_001.png", "train_images_page1_004.png",
                     "train_images_page1_005.png"]
    again = convert_detection_to_recognition_format(folder / "Label.txt", tmp_path / "rec2")
    assert again["kept"] == summary["kept"]
    assert (tmp_path / "rec2" / "labels.txt").read_text(encoding="utf-8") == (out / "labels.txt").read_text(
        encoding="utf-8")


def test_icdar2015(tmp_path):
    imgs, gt = tmp_path / "imgs", tmp_path / "gt"
    imgs.mkdir()
    gt.mkdir()
    _page(imgs / "img_1.png")
    rows = []
    for pts, text, difficult, _ in BOXES:
        if difficult:
            continue
        rows.append(",".join(str(v) for p in pts for v in p) + "," + text)
    (gt / "gt_img_1.txt").write_text("\ufeff" + "\n".join(rows) + "\n", encoding="utf-8")
    (gt / "gt_img_2.txt").write_text("1,1,5,1,5,5,1,5,x\n", encoding="utf-8")  # its image is missing
    out = tmp_path / "rec"
    s = convert_detection_to_recognition_format(gt, out, fmt="icdar2015", images_root=imgs)
    assert s["kept"] == 4 and s["skipped"] == {"do-not-care": 1, "image-missing": 1}


def test_convert_cli(tmp_path):
    assert main(["data", "convert", "--from", "ppocrlabel", str(tmp_path / "none.txt"), "-o",
                 str(tmp_path / "o")]) == 2
    with pytest.raises(SystemExit):
        main(["data", "convert", "--from", "coco", str(tmp_path), "-o", str(tmp_path / "o")])
