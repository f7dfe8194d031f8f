"""Image checks run in worker processes: exists, decodes completely, big enough.

The engine decodes with OpenCV (``DecodeImage``: ``cv2.imdecode(buf, 1)``) and silently
replaces a sample it cannot decode with another one, so we decode with the same call: what
passes here is what the engine can read. JPEGs must also end with their EOI marker (older
OpenCV builds return a grey-padded image for a truncated JPEG). Pillow is only used on failures,
to say why.
"""

from __future__ import annotations

import io
from typing import Any, List, Optional, Sequence, Tuple

MIN_HEIGHT = 8
MIN_WIDTH = 4

_CV2: Any = None
_NP: Any = None


def load_decoder() -> None:
    """Import OpenCV now (before forking workers, so they share it)."""
    _cv2()


def _cv2() -> Tuple[Any, Any]:
    global _CV2, _NP
    if _CV2 is None:
        import cv2
        import numpy as np

        cv2.setNumThreads(1)
        _CV2, _NP = cv2, np
    return _CV2, _NP


def decode(data: bytes) -> Any:
    """The engine's decode: a BGR array, or None."""
    cv2, np = _cv2()
    return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)


def _why(data: bytes) -> str:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
            im.load()
    except Exception as exc:  # noqa: BLE001 - the reason is all we want
        reason = str(exc) or type(exc).__name__
        if "cannot identify image file" in reason:
            return "not an image (unknown format)"
        if "truncated" in reason or "broken data stream" in reason:
            return "truncated (the file ends before the image data does)"
        return f"cannot be decoded ({reason})"
    return f"{fmt} images cannot be decoded by OpenCV, which the engine uses"


def check_image(path: str, min_height: int = MIN_HEIGHT, min_width: int = MIN_WIDTH
                ) -> Tuple[Optional[str], str, int, int]:
    """(code, detail, width, height); code is None when the image is fine."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except (FileNotFoundError, NotADirectoryError):
        return "missing-image", "no such file", 0, 0
    except IsADirectoryError:
        return "unreadable-image", "is a folder, not an image", 0, 0
    except OSError as exc:
        return "unreadable-image", f"cannot be read: {exc.strerror or exc}", 0, 0
    except ValueError:
        return "missing-image", "the path holds a NUL character", 0, 0
    if not data:
        return "unreadable-image", "zero bytes", 0, 0
    img = decode(data)
    if img is None:
        return "unreadable-image", _why(data), 0, 0
    if data[:2] == b"\xff\xd8" and not data.rstrip(b"\x00\r\n\t ").endswith(b"\xff\xd9"):
        return "unreadable-image", "truncated JPEG (no end-of-image marker)", 0, 0
    height, width = img.shape[:2]
    if height < min_height or width < min_width:
        return "tiny-image", f"{width}x{height} px (minimum {min_width}x{min_height})", width, height
    return None, "", width, height


def decode_chunk(paths: Sequence[str]) -> int:
    """Decode-only pass (the benchmark's floor): read and decode, nothing else."""
    n = 0
    for p in paths:
        with open(p, "rb") as fh:
            if decode(fh.read()) is not None:
                n += 1
    return n


def quiet_worker() -> None:
    """Send a worker process's C-level stderr (libpng/libjpeg chatter) to /dev/null."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:
        pass


__all__: List[str] = ["MIN_HEIGHT", "MIN_WIDTH", "check_image", "decode", "decode_chunk", "load_decoder",
                      "quiet_worker"]
