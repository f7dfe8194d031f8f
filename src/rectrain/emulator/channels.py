"""What SageMaker downloads for an ``S3Prefix`` channel in File mode, done here (run-local).

AWS documents the channel's ``S3Uri`` as a *key name prefix*: "SageMaker uses all objects
that match the specified key name prefix for model training" (API reference,
``S3DataSource``). So ``s3://b/ds/train`` matches ``ds/train/a.png`` and also
``ds/train_extra/b.png``; only ``s3://b/ds/train/`` (what rectrain sends) means the folder.

Where each object lands follows AWS's own emulation of a channel (the SageMaker Python SDK's
local mode, ``sagemaker.utils.download_folder``): an object whose key *is* the prefix becomes
the file ``basename(key)``; every other object under the key prefix goes to its key minus the
prefix, leading ``/`` removed (the sibling above lands as ``_extra/b.png``). Folder markers
(keys ending in ``/``) are skipped. The emulation is no kinder than SageMaker: a URI without
the ``/`` brings the siblings' files into the channel, as it would on AWS.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import List, Tuple

from rectrain.errors import DataError
from rectrain.storage.objects import download_file, list_objects
from rectrain.storage.parallel import run_parallel
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import S3Service

DOWNLOAD_WORKERS = 8


def channel_files(s3: S3Service, uri: S3Uri) -> List[Tuple[str, str]]:
    """``[(key, path in the channel)]`` of every object SageMaker puts in a channel whose
    ``S3Uri`` is ``uri``, matched as a key prefix. A key that would land outside the channel
    folder (``..``) is a :class:`DataError` naming it (fail closed)."""
    prefix = uri.key
    found: List[Tuple[str, str]] = []
    for obj in list_objects(s3, uri, folder=False):  # the raw key prefix, as SageMaker matches it
        if obj.key.endswith("/"):
            continue
        rel = posixpath.basename(obj.key) if obj.key == prefix else obj.key[len(prefix):].lstrip("/")
        parts = rel.split("/")
        if not rel or ".." in parts or "" in parts:
            raise DataError(f"s3://{uri.bucket}/{obj.key} would land outside the channel folder "
                            f"({rel!r}).", "rename the object, or point the channel at another prefix.",
                            path=f"s3://{uri.bucket}/{obj.key}")
        found.append((obj.key, rel))
    return found


def download_channel(s3: S3Service, uri: S3Uri, dest: Path, workers: int = DOWNLOAD_WORKERS) -> int:
    """Every object of the channel into ``dest`` (each one verified against its sha256
    metadata or MD5 ETag); returns how many. Nothing there: 0 (SageMaker fails such a job
    before the container starts; ``launch`` checks it first)."""
    files = channel_files(s3, uri)
    dest.mkdir(parents=True, exist_ok=True)

    def fetch(item: Tuple[str, str]) -> None:
        key, rel = item
        download_file(s3, S3Uri(uri.bucket, key), dest / rel)

    run_parallel(files, fetch, workers)
    return len(files)
