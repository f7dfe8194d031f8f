"""The Python API names users know, over :mod:`rectrain.storage.push`, :mod:`rectrain.storage.pull`
and :mod:`rectrain.storage.pack` (the CLI calls the same functions).

These are entry points: they take addresses as text (or :class:`S3Uri`) and an endpoint, as a
notebook has them, and build the :class:`S3Service` (unless one is given)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Union

from rectrain.storage.pack import pack_dataset
from rectrain.storage.parallel import TRANSFER_WORKERS
from rectrain.storage.pull import pull
from rectrain.storage.push import push
from rectrain.storage.result import TransferResult
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import S3Service


def upload_recognition_data_to_s3(
    local_dir: Any,
    s3_uri: Union[str, S3Uri],
    *,
    endpoint_url: Optional[str] = None,
    packed: bool = False,
    shard_size: Any = "128MB",
    workers: int = TRANSFER_WORKERS,
    progress: bool = True,
    s3: Optional[S3Service] = None,
) -> Dict[str, Any]:
    """Upload a recognition dataset folder (images + label files + dictionary) to ``s3_uri`` with its
    ``manifest.jsonl`` (written last). ``packed=True`` first packs it into tar shards (the
    format for SageMaker channels); a folder made by ``rectrain data pack`` is uploaded as it is.
    Reruns resume: what is already there is skipped. Returns the transfer summary."""
    uri = S3Uri.parse(s3_uri)
    service = s3 or S3Service.for_workers(endpoint_url, workers)

    def send(folder: Any) -> TransferResult:
        return push(
            service,
            folder,
            uri,
            workers=workers,
            progress=progress,
            manifest=True,
        )

    if not packed:
        return _summary(send(local_dir))
    with tempfile.TemporaryDirectory(prefix="rectrain-pack-") as tmp:
        pack = pack_dataset(local_dir, Path(tmp) / "packed", shard_size, progress=progress)
        out = send(Path(tmp) / "packed").to_dict()
    out.update({"packed": True, "shards": len(pack.shards), "files": pack.files, "bytes": pack.bytes})
    return out


def download_recognition_data_from_s3(
    s3_uri: Union[str, S3Uri],
    local_dir: Any,
    *,
    endpoint_url: Optional[str] = None,
    workers: int = TRANSFER_WORKERS,
    progress: bool = True,
    s3: Optional[S3Service] = None,
) -> Dict[str, Any]:
    """Download a dataset from ``s3_uri`` into ``local_dir``, checked against its manifest. A packed
    dataset is detected and unpacked on the fly into the original tree. Reruns resume."""
    result = pull(
        s3 or S3Service.for_workers(endpoint_url, workers),
        S3Uri.parse(s3_uri),
        local_dir,
        workers=workers,
        progress=progress,
        unpack=True,
    )
    return _summary(result)


def _summary(result: TransferResult) -> Dict[str, Any]:
    out = result.to_dict()
    out.update({"files": result.files_total, "bytes": result.bytes_total})
    return out
