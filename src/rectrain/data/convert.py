"""Detection annotations (PPOCRLabel, ICDAR 2015) -> recognition crops + a label file.

Each quadrilateral is perspective-warped to an upright crop exactly as PaddleOCR does it
(``get_rotate_crop_image``: points taken in annotation order from the top-left corner, width and
height from the longer opposite sides, crops with h >= 1.5 w rotated 90°), so crops look like
what the detector will feed the recognizer; one exception: a single-character word (``กี่``) in
a tall box is not rotated. Points listed counter-clockwise are reordered
(a mirrored crop would teach mirrored text). ``###`` / ``*`` (do not care) and difficult boxes are
skipped. Names are deterministic: ``<image path with / as _>_<box index>.png``.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from rectrain.errors import DataError, UserError
from rectrain.fsutil import refuse_special, special_kind
from rectrain.logs import get_logger
from rectrain.outputs import atomic_open, claim_output_dir

PathLike = Union[str, "os.PathLike[str]"]
log = get_logger("data.convert")

DO_NOT_CARE = ("###", "*")
IMAGE_EXTS = (".jpg", ".png", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".JPG", ".PNG", ".JPEG")
ROTATE_RATIO = 1.5

Box = Tuple[List[List[float]], str, bool]  # points, transcription, difficult


def _safe_name(rel: str) -> str:
    stem = os.path.splitext(rel.replace("\\", "/"))[0]
    return re.sub(r"[^0-9A-Za-z._-]+", "_", stem).strip("_") or "image"


def _ppocrlabel(src: Path, problems: List[str], skipped: Counter) -> Iterator[Tuple[str, List[Box]]]:
    with open(src, "rb") as fh:
        for no, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8-sig" if no == 1 else "utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                skipped["bad-line"] += 1
                problems.append(f"{src}:{no}: not UTF-8")
                continue
            if not line.strip():
                continue
            if "\t" not in line:
                skipped["bad-line"] += 1
                problems.append(f"{src}:{no}: no TAB between image path and annotations")
                continue
            path, ann = line.split("\t", 1)
            try:
                items = json.loads(ann)
                boxes = [(it["points"], str(it.get("transcription", "")), bool(it.get("difficult", False)))
                         for it in items]
            except (ValueError, TypeError, KeyError) as exc:
                skipped["bad-line"] += 1
                problems.append(f"{src}:{no}: annotation is not a JSON list of "
                                f"{{transcription, points}} ({type(exc).__name__}: {exc})")
                continue
            yield path, boxes


def _icdar_file(gt: Path, problems: List[str], skipped: Counter) -> List[Box]:
    boxes: List[Box] = []
    refuse_special(gt, what="ground-truth file")
    text = gt.read_bytes().decode("utf-8-sig", errors="replace")
    for no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(",", 8)
        if len(parts) < 9:
            skipped["bad-line"] += 1
            problems.append(f"{gt}:{no}: expected x1,y1,...,x4,y4,transcription")
            continue
        try:
            coords = [float(v) for v in parts[:8]]
        except ValueError:
            skipped["bad-line"] += 1
            problems.append(f"{gt}:{no}: coordinates are not numbers")
            continue
        pts = [[coords[i], coords[i + 1]] for i in range(0, 8, 2)]
        boxes.append((pts, parts[8], False))
    return boxes


def _icdar(src: Path, images_root: Path, problems: List[str], skipped: Counter
           ) -> Iterator[Tuple[str, List[Box]]]:
    gts = sorted(src.glob("*.txt")) if src.is_dir() else [src]
    if not gts:
        raise DataError("no ground-truth .txt files in this folder.", "pass the ICDAR 2015 gt folder "
                        "(gt_img_1.txt, ...).", path=str(src))
    for gt in gts:
        stem = gt.stem[3:] if gt.stem.startswith("gt_") else gt.stem
        image = next((stem + e for e in IMAGE_EXTS if (images_root / (stem + e)).is_file()), None)
        boxes = _icdar_file(gt, problems, skipped)
        yield (image or stem + ".jpg"), boxes  # a missing image is counted by the caller


def spacing_chars(text: str) -> int:
    """Characters that take horizontal room (combining marks such as Thai tone marks do not)."""
    return sum(1 for c in text if unicodedata.category(c) not in ("Mn", "Me") and not c.isspace())


def crop_quad(img: Any, points: Any, text: Optional[str] = None) -> Any:
    """Upright crop of a quadrilateral (PaddleOCR's get_rotate_crop_image, orientation-safe).

    A crop with h >= 1.5 w is rotated 90° (vertical text), except when ``text`` has a single
    spacing character: a box around ``กี่`` is tall because of its stacked marks, not because the
    text runs downwards, and rotating it would teach the model a sideways word.
    """
    import cv2
    import numpy as np

    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    if len(pts) != 4:
        pts = cv2.boxPoints(cv2.minAreaRect(pts)).astype(np.float32)
        # start at the top-left corner, clockwise
        s = pts.sum(axis=1)
        pts = np.roll(pts, -int(np.argmin(s)), axis=0)
    x, y = pts[:, 0], pts[:, 1]
    if float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) < 0:  # counter-clockwise on screen
        pts = pts[[0, 3, 2, 1]]
    w = int(round(max(np.linalg.norm(pts[0] - pts[1]), np.linalg.norm(pts[2] - pts[3]))))
    h = int(round(max(np.linalg.norm(pts[0] - pts[3]), np.linalg.norm(pts[1] - pts[2]))))
    if w < 2 or h < 2:
        return None
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(pts, dst)
    crop = cv2.warpPerspective(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    if h / w >= ROTATE_RATIO and (text is None or spacing_chars(text) > 1):
        crop = np.rot90(crop)
    return crop


def _find_image(rel: str, roots: List[Path]) -> Optional[Path]:
    for r in roots:
        p = r / rel
        if p.is_file():
            return p
    return None


def convert_detection_to_recognition_format(src: PathLike, out_dir: PathLike, *, fmt: str = "ppocrlabel",
                                            images_root: Optional[PathLike] = None) -> Dict[str, Any]:
    """Write ``out_dir/images/*.png`` and ``out_dir/labels.txt``; return a summary of kept/skipped.

    PPOCRLabel paths are looked up under ``images_root``, else the Label.txt folder, else its
    parent (PPOCRLabel writes ``<folder>/<image>``). ICDAR 2015: ``src`` is the gt folder (or
    one gt file), images ``img_N.jpg`` under ``images_root`` (default: the gt folder).
    """
    import cv2
    import numpy as np

    source = Path(src)
    if fmt not in ("ppocrlabel", "icdar2015"):
        raise UserError(f"unknown format {fmt!r}.", "use ppocrlabel or icdar2015.")
    refuse_special(source, what="annotation file")
    if not source.exists():
        raise DataError("not found.", "pass the PPOCRLabel Label.txt or the ICDAR 2015 gt folder.",
                        path=str(source))
    if fmt == "ppocrlabel" and source.is_dir():
        source = source / "Label.txt"
        if not source.is_file():
            raise DataError("no Label.txt in this folder.", "pass the Label.txt file.",
                            path=str(source.parent))
    out = claim_output_dir(out_dir, command="data convert", writes=["labels.txt", "images/"],
                           inputs=[("annotation file", source), ("images root", images_root)])
    (out / "images").mkdir(parents=True, exist_ok=True)
    problems: List[str] = []
    skipped: Counter = Counter()
    kept = 0
    boxes_total = 0
    images = 0
    if fmt == "ppocrlabel":
        roots = [Path(images_root)] if images_root else [source.parent, source.parent.parent]
        items: Iterator[Tuple[str, List[Box]]] = _ppocrlabel(source, problems, skipped)
    else:
        root = Path(images_root) if images_root else (source if source.is_dir() else source.parent)
        roots = [root]
        items = _icdar(source, root, problems, skipped)
    labels: List[str] = []
    used: Counter = Counter()
    for rel, boxes in items:
        images += 1
        boxes_total += len(boxes)
        path = _find_image(rel, roots)
        img = None
        if path is not None and special_kind(path):  # never opened: a FIFO would wait forever
            problems.append(f"{rel}: the image is {special_kind(path)}, not a regular file; skipped")
            skipped["image-unreadable"] += len(boxes)
            continue
        if path is not None:
            img = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            skipped["image-missing" if path is None else "image-unreadable"] += len(boxes)
            problems.append(f"{rel}: image {'not found' if path is None else 'cannot be decoded'} "
                            f"(looked in {', '.join(str(r) for r in roots)})")
            continue
        base = _safe_name(rel)
        used[base] += 1
        if used[base] > 1:
            base = f"{base}_{used[base]}"
        for i, (points, text, difficult) in enumerate(boxes):
            if text.strip() in DO_NOT_CARE:
                skipped["do-not-care"] += 1
                continue
            if difficult:
                skipped["difficult"] += 1
                continue
            if not text.strip():
                skipped["empty-transcription"] += 1
                continue
            if "\t" in text or "\n" in text:
                skipped["bad-annotation"] += 1
                problems.append(f"{rel} box {i}: transcription holds a TAB or newline")
                continue
            try:
                crop = crop_quad(img, points, text)
            except Exception as exc:  # noqa: BLE001 - malformed points are an input problem
                skipped["bad-annotation"] += 1
                problems.append(f"{rel} box {i}: bad points {points!r} ({exc})")
                continue
            if crop is None:
                skipped["degenerate"] += 1
                continue
            name = f"images/{base}_{i:03d}.png"
            ok, buf = cv2.imencode(".png", np.ascontiguousarray(crop))
            if not ok:
                skipped["bad-annotation"] += 1
                continue
            with atomic_open(out / name, "wb") as fh:
                fh.write(buf.tobytes())
            labels.append(f"{name}\t{text}\n")
            kept += 1
    with atomic_open(out / "labels.txt", "w") as fh:
        fh.writelines(labels)
    for p in problems[:10]:
        log.warning("%s", p)
    if len(problems) > 10:
        log.warning("... and %d more problems (see the summary).", len(problems) - 10)
    bad_lines = skipped.pop("bad-line", 0)
    return {"format": fmt, "source": str(source), "images": images, "boxes": boxes_total, "kept": kept,
            "skipped": dict(sorted(skipped.items())), "skipped_total": sum(skipped.values()),
            "bad_annotation_lines": bad_lines,
            "labels": str(out / "labels.txt"), "problems": problems[:100]}
