"""Pre-shrink word images that are taller than the model will ever see them.

Crops cut from detection data are often several times taller than the recognition model's
input (32, 48 or 64 pixels). The engine decodes and resizes every one of them again in every
epoch; shrinking them once, at pack time, to a height still above the model's input keeps what
the model sees and removes most of that work (and of the bytes moved to S3).

* the aspect ratio is kept (width scaled by the same factor, rounded, at least 1 pixel);
* ``cv2.INTER_AREA``, the right filter for downscaling (no aliasing);
* the file keeps its name and format, so label files need no change: PNG, BMP, TIFF and WebP
  are written losslessly; JPEG is re-encoded at quality 95 with 4:4:4 chroma;
* JPEGs are decoded as the engine decodes them (``IMREAD_COLOR``: EXIF orientation applied), so
  the shrunk file shows what the engine saw; other formats keep their channels and depth;
* files that are not images, not taller than the limit, in a format OpenCV cannot write (GIF)
  or that do not decode are kept byte for byte, and counted.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from rectrain.errors import DataError, UserError
from rectrain.logs import get_logger
from rectrain.outputs import link_or_copy, write_bytes

log = get_logger("data.shrink")

JPEG_QUALITY = 95
INTERPOLATION = "INTER_AREA"
_JPEG = {".jpg", ".jpeg"}
_LOSSLESS = {".png", ".bmp", ".tif", ".tiff", ".webp"}
MIN_HEIGHT = 8


@dataclass
class ShrinkResult:
    max_height: int
    files: int = 0
    resized: int = 0
    kept: int = 0  # images not taller than max_height
    skipped: int = 0  # not an image, unwritable format, or undecodable: copied as they were
    bytes_before: int = 0
    bytes_after: int = 0
    undecodable: List[str] = field(default_factory=list)

    def record(self) -> Dict[str, Any]:
        """What the manifest keeps about the shrinking."""
        data = asdict(self)
        data["undecodable"] = self.undecodable[:20]
        data.update({"interpolation": INTERPOLATION, "aspect_ratio": "kept",
                     "formats": {"png/bmp/tiff/webp": "lossless, same format",
                                 "jpeg": f"quality {JPEG_QUALITY}, 4:4:4"}})
        return data


def _encode_params(suffix: str) -> List[int]:
    import cv2

    if suffix in _JPEG:
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
        sampling = getattr(cv2, "IMWRITE_JPEG_SAMPLING_FACTOR", None)
        if sampling is not None:
            params += [sampling, getattr(cv2, "IMWRITE_JPEG_SAMPLING_FACTOR_444", 0x111111)]
        return params
    if suffix == ".webp":
        return [cv2.IMWRITE_WEBP_QUALITY, 101]  # above 100: lossless
    if suffix == ".png":
        return [cv2.IMWRITE_PNG_COMPRESSION, 6]
    return []


def shrink_bytes(data: bytes, suffix: str, max_height: int) -> Optional[Tuple[bytes, Tuple[int, int],
                                                                               Tuple[int, int]]]:
    """``(new bytes, (w, h) before, (w, h) after)`` for an image taller than ``max_height``;
    None when it is not taller. Raises ValueError when it does not decode or encode."""
    import cv2
    import numpy as np

    suffix = suffix.lower()
    flag = cv2.IMREAD_COLOR if suffix in _JPEG else cv2.IMREAD_UNCHANGED
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)
    if img is None or img.size == 0:
        raise ValueError("does not decode")
    h, w = img.shape[:2]
    if h <= max_height:
        return None
    new_w = max(1, int(round(w * max_height / h)))
    small = cv2.resize(img, (new_w, max_height), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(suffix, small, _encode_params(suffix))
    if not ok:
        raise ValueError(f"cannot be written as {suffix}")
    return buf.tobytes(), (w, h), (new_w, max_height)


def _place(src: Path, dst: Path) -> None:
    """An unchanged file in the staging tree: a hard link where possible, else a copy."""
    link_or_copy(src, dst)


def shrink_tree(src_dir: Union[str, Path], out_dir: Union[str, Path], max_height: int, *,
                workers: Optional[int] = None) -> ShrinkResult:
    """Write ``src_dir`` to ``out_dir`` (which must not exist) with every image taller than
    ``max_height`` shrunk; other files are hard-linked (or copied) unchanged."""
    src = Path(src_dir).expanduser().resolve()
    out = Path(out_dir).expanduser().resolve()
    if int(max_height) < MIN_HEIGHT:
        raise UserError(f"--max-height {max_height} is too small.",
                        f"use at least {MIN_HEIGHT}; the model's input height or more (e.g. 48 or 64).")
    if not src.is_dir():
        raise DataError("folder not found.", "check the dataset folder.", path=str(src))
    if out.exists():
        raise UserError(f"{out} already exists.", "choose a new folder for the shrunk copy.")
    result = ShrinkResult(max_height=int(max_height))
    jobs: List[Tuple[Path, Path]] = []
    for root, dirs, files in os.walk(src):
        dirs.sort()
        rel_root = Path(root).relative_to(src)
        (out / rel_root).mkdir(parents=True, exist_ok=True)
        for name in sorted(files):
            jobs.append((Path(root) / name, out / rel_root / name))

    def work(job: Tuple[Path, Path]) -> Tuple[str, int, int, Optional[str]]:
        path, target = job
        size = path.stat().st_size
        suffix = path.suffix.lower()
        if suffix not in _JPEG and suffix not in _LOSSLESS:
            _place(path, target)
            return "skipped", size, size, None
        try:
            shrunk = shrink_bytes(path.read_bytes(), suffix, int(max_height))
        except ValueError as exc:
            _place(path, target)
            return "skipped", size, size, f"{path.relative_to(src)}: {exc}"
        if shrunk is None:
            _place(path, target)
            return "kept", size, size, None
        write_bytes(target, shrunk[0])
        return "resized", size, len(shrunk[0]), None

    n = workers or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                    else (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=n) as pool:  # OpenCV releases the GIL
        for kind, before, after, problem in pool.map(work, jobs, chunksize=64):
            result.files += 1
            setattr(result, kind, getattr(result, kind) + 1)
            result.bytes_before += before
            result.bytes_after += after
            if problem:
                result.undecodable.append(problem)
    if result.undecodable:
        log.warning("%d image(s) could not be shrunk and are packed as they were (first: %s). "
                    "Fix: run `rectrain data validate` on the dataset.", len(result.undecodable),
                    result.undecodable[0])
    log.info("shrunk %d of %d file(s) to at most %d px high (%.1f MB -> %.1f MB)", result.resized,
             result.files, result.max_height, result.bytes_before / 1e6, result.bytes_after / 1e6)
    return result


def default_max_height(largest_input_height: int) -> int:
    """The default limit for a config whose largest input height is given: that height, and
    never below 48 (room for the augmentations' crops and the multi-scale sizes)."""
    return max(48, int(largest_input_height))
