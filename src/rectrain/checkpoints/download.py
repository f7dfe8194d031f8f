"""``rectrain ckpt download NAME``: official pretrained weights, verified before they are kept.

The file is streamed to ``DEST.part`` beside the destination, its SHA-256 computed on the way,
its size compared with Content-Length, and renamed over ``DEST`` only when the hash matches the
pinned one: an interrupted or tampered download never looks like a finished one.

Addresses are the official ones from the PaddleOCR 3.x model lists
(docs/version3.x/algorithm/PP-OCRv5/PP-OCRv5_multi_languages.md: "Training Model" links under
``https://paddle-model-ecology.bj.bcebos.com/paddlex/official_pretrained_model/``). A model whose
SHA-256 is not pinned yet here is refused unless the user passes the hash (``--sha256``) or
explicitly accepts an unverified first download (``--trust-unpinned``), which prints the hash
to pin and writes it beside the file (``DEST.sha256``).
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional, Union

from rectrain.errors import IntegrityError, StorageError, UserError
from rectrain.fsutil import sha256_file
from rectrain.outputs import (
    claim_output_file,
    move,
    open_stream,
    record_output,
    refuse_output_over_inputs,
    remove_quietly,
    write_text,
)

PathLike = Union[str, Path]
OFFICIAL_BASE = "https://paddle-model-ecology.bj.bcebos.com/paddlex/official_pretrained_model/"


@dataclass(frozen=True)
class KnownModel:
    name: str
    filename: str
    sha256: Optional[str]  # None: not pinned yet (see the module docstring)
    dictionary: str  # the dictionary it was trained with (upstream path)
    config: str  # the official training config (upstream path)
    note: str = ""

    def url(self, base: Optional[str] = None) -> str:
        """The download address under ``base`` (a mirror, ``RECTRAIN_MODEL_MIRROR``), else the
        official one."""
        root = base or OFFICIAL_BASE
        return root.rstrip("/") + "/" + self.filename


def _model(name: str, dictionary: str, config: str, note: str = "") -> KnownModel:
    return KnownModel(name, f"{name}_pretrained.pdparams", None, dictionary, config, note)


KNOWN: Dict[str, KnownModel] = {m.name: m for m in (
    _model("th_PP-OCRv5_mobile_rec", "ppocr/utils/dict/ppocrv5_th_dict.txt",
           "configs/rec/PP-OCRv5/multi_language/th_PP-OCRv5_mobile_rec.yaml",
           "526 CTC outputs: blank + the 524 lines of the current dictionary + space"),
    _model("PP-OCRv5_mobile_rec", "ppocr/utils/dict/ppocrv5_dict.txt",
           "configs/rec/PP-OCRv5/PP-OCRv5_mobile_rec.yml"),
    _model("PP-OCRv5_server_rec", "ppocr/utils/dict/ppocrv5_dict.txt",
           "configs/rec/PP-OCRv5/PP-OCRv5_server_rec.yml"),
)}


def _names(models: Mapping[str, KnownModel]) -> str:
    return ", ".join(sorted(models))


def download_model(name: str, dest: PathLike, *, sha256: Optional[str] = None,
                   trust_unpinned: bool = False, url: Optional[str] = None,
                   models: Optional[Mapping[str, KnownModel]] = None, timeout: float = 60.0,
                   progress: Optional[Callable[[int, Optional[int]], None]] = None,
                   mirror: Optional[str] = None) -> Path:
    """Download ``name`` (a known model, or any file with ``url`` and ``sha256``) to ``dest``
    (a file, or a folder: the upstream file name inside it), from ``mirror`` (an internal
    mirror or an S3 website, ``RECTRAIN_MODEL_MIRROR``) when given. Returns the verified file."""
    table = KNOWN if models is None else models
    model = table.get(name)
    if model is None and url is None:
        raise UserError(f"ckpt download {name}: not a known model (known: {_names(table)}).",
                        "pass one of those names, or --url URL --sha256 HEX for another file.")
    source = url or (model.url(mirror) if model else "")
    filename = model.filename if model else Path(source.split("?")[0]).name or f"{name}.pdparams"
    want = (sha256 or (model.sha256 if model else None) or "").lower() or None
    if want is not None and (len(want) != 64 or any(c not in "0123456789abcdef" for c in want)):
        raise UserError(f"--sha256 {sha256!r}: not a SHA-256 (64 hex digits).",
                        "copy the hash exactly, e.g. from `sha256sum FILE`.")
    if want is None and not trust_unpinned:
        raise IntegrityError(
            f"ckpt download {name}: no SHA-256 is pinned for {source}, so the download could "
            "not be verified.",
            "pass --sha256 HEX (from a copy you trust), or --trust-unpinned to download it "
            "once unverified: the hash is printed and written beside the file to pin later.")
    scheme = source.split("://", 1)[0].lower() if "://" in source else ""
    host = source.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].lower()
    loopback = host in ("127.0.0.1", "localhost", "[::1]")  # a local mirror: nobody on the way
    pinned_local = scheme == "file" and want is not None  # a mirror on a mounted disk, checked by hash
    if not pinned_local and (scheme not in ("https", "http") or (scheme == "http" and want is None
                                                                 and not loopback)):
        raise UserError(f"ckpt download {name}: {source} is not an https:// address"
                        + (" (plain http with no pinned SHA-256 lets anyone on the way change "
                           "the weights)" if scheme in ("http", "file") else "") + ".",
                        "use an https:// URL (or a mirror), or pass --sha256 HEX for an http:// or "
                        "file:// one.")
    target = Path(dest).expanduser()
    if target.is_dir() or str(dest).endswith(("/", os.sep)):
        target = target / filename
    local = urllib.request.url2pathname(source[len("file://"):]) if source.startswith("file://") else None
    refuse_output_over_inputs(target, [("file downloaded", local)])
    if target.is_file() and want is not None and sha256_file(target) == want:
        return target  # already there and verified
    sidecar = target.with_name(target.name + ".sha256")
    claim_output_file(target, command="ckpt download", inputs=[("file downloaded", local)])
    if want is None:
        claim_output_file(sidecar, command="ckpt download")
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    got = 0
    try:
        try:
            req = urllib.request.Request(source, headers={"User-Agent": "rectrain"})
            with urllib.request.urlopen(req, timeout=timeout) as resp, open_stream(part) as fh:
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                while True:
                    chunk = resp.read(1 << 20)
                    if not chunk:
                        break
                    fh.write(chunk)
                    digest.update(chunk)
                    got += len(chunk)
                    if progress is not None:
                        progress(got, total)
                fh.flush()
                os.fsync(fh.fileno())
        except urllib.error.HTTPError as exc:
            raise StorageError(f"{source}: HTTP {exc.code} {exc.reason}.",
                               "check the model name / URL, or set RECTRAIN_MODEL_MIRROR to a "
                               "mirror that has the file.") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise StorageError(f"{source}: download failed after {got} bytes ({exc}).",
                               "check the network (or the mirror) and run the command again; "
                               "nothing was kept.") from exc
        if total is not None and got != total:
            raise StorageError(f"{source}: {got} of {total} bytes arrived.",
                               "run the command again; the partial file was removed.")
        actual = digest.hexdigest()
        if want is not None and actual != want:
            raise IntegrityError(f"{source}: SHA-256 {actual} is not the pinned {want}.",
                                 "the file differs from the one pinned (a changed upload or a "
                                 "tampered mirror); nothing was kept. Check the source.")
        move(part, target)
    except BaseException:
        remove_quietly(part)
        raise
    record_output(target, command="ckpt download")
    if want is None:
        write_text(sidecar, f"{actual}  {target.name}\n")
        record_output(sidecar, command="ckpt download")
    return target
