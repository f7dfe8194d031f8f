"""Image checks run in worker processes: exists, decodes completely, big enough.

The engine decodes with OpenCV (``DecodeImage``: ``cv2.imdecode(buf, 1)``) and silently
replaces a sample it cannot decode with another one, so we decode with the same call: what
passes here is what the engine can read. JPEGs must also end with their EOI marker (older
OpenCV builds return a grey-padded image for a truncated JPEG). Pillow is only used on failures,
to say why.
"""

from __future__ import annotations

import io
import os
from typing import Any, List, Optional, Sequence, Tuple

from rectrain.fsutil import special_kind

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


# a word crop is small; a bigger picture is likely a page or a photo given by mistake
LARGE_SIDE = 4096
LARGE_PIXELS = 4_000_000
# Pillow's decompression-bomb limit (Image.MAX_IMAGE_PIXELS, ~89.5 MP, 0.25 GB as 8-bit RGB):
# past it nothing is decoded, so one worker never holds more than that
BOMB_PIXELS = 89_478_485
READ_LIMIT = 64 << 20  # bytes read whole; a larger file gets its header read only


def _be16(b: bytes, i: int) -> int:
    return (b[i] << 8) | b[i + 1]


def header_size(data: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) from the file header, without decoding: PNG, JPEG, GIF, BMP, WebP;
    others through Pillow (which reads the header only). None when unknown."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                i += 1 if marker == 0xFF else 2
                continue
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                return _be16(data, i + 7), _be16(data, i + 5)
            i += 2 + _be16(data, i + 2)
        return None
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data[:2] == b"BM" and len(data) >= 26:
        return (int.from_bytes(data[18:22], "little", signed=True),
                abs(int.from_bytes(data[22:26], "little", signed=True)))
    try:
        import warnings

        from PIL import Image

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                return im.size
    except Exception:  # noqa: BLE001 - Image.DecompressionBombError included: size unknown
        return None


def _size_finding(size: Optional[Tuple[int, int]]) -> Optional[Tuple[str, str]]:
    if size is None:
        return None
    w, h = size
    if w * h > BOMB_PIXELS:
        gb = w * h * 3 / 1e9
        return ("huge-image", f"{w}x{h} px ({w * h / 1e6:.0f} megapixels, {gb:.1f} GB to decode "
                f"per worker), past Pillow's decompression-bomb limit of {BOMB_PIXELS / 1e6:.1f} "
                "megapixels: not decoded")
    if max(w, h) > LARGE_SIDE or w * h > LARGE_PIXELS:
        return ("large-image", f"{w}x{h} px, far larger than a word crop (the engine shrinks it "
                "to the model's input height, e.g. 48 px)")
    return None


def check_image(path: str, min_height: int = MIN_HEIGHT, min_width: int = MIN_WIDTH
                ) -> Tuple[Optional[str], str, int, int]:
    """(code, detail, width, height); code is None when the image is fine. The header is read
    first: an image past the decompression-bomb limit is never decoded (memory per worker
    stays bounded); a large one (``large-image``, a warning) is decoded and checked."""
    special = special_kind(path)
    if special:  # never opened: a named pipe would wait forever, /dev/zero never end
        return "unreadable-image", f"is {special}, not a regular file (an image must be one)", 0, 0
    try:
        with open(path, "rb") as fh:
            size_bytes = os.fstat(fh.fileno()).st_size
            data = fh.read(READ_LIMIT if size_bytes > READ_LIMIT else -1)
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
    size = header_size(data)
    big = _size_finding(size)
    if big is not None and big[0] == "huge-image":
        return big[0], big[1], size[0] if size else 0, size[1] if size else 0
    if size_bytes > READ_LIMIT:
        return ("huge-image", f"{size_bytes / 1e6:.0f} MB file, far past any word crop: not "
                "decoded", size[0] if size else 0, size[1] if size else 0)
    img = decode(data)
    if img is None:
        return "unreadable-image", _why(data), 0, 0
    if data[:2] == b"\xff\xd8" and not data.rstrip(b"\x00\r\n\t ").endswith(b"\xff\xd9"):
        return "unreadable-image", "truncated JPEG (no end-of-image marker)", 0, 0
    height, width = img.shape[:2]
    if height < min_height or width < min_width:
        return "tiny-image", f"{width}x{height} px (minimum {min_width}x{min_height})", width, height
    if big is not None:
        return big[0], big[1], width, height
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
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:
        pass


__all__: List[str] = ["BOMB_PIXELS", "MIN_HEIGHT", "MIN_WIDTH", "check_image", "decode", "decode_chunk",
                      "header_size", "load_decoder", "quiet_worker"]
