"""S3 addresses as values: :class:`S3Uri` is parsed once, at the edge (a command-line argument,
a Python API argument, a job config), and travels typed from there; the client that reaches
them is :class:`rectrain.storage.service.S3Service`.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Union

from rectrain.errors import StorageError


@dataclass(frozen=True)
class S3Uri:
    """``s3://bucket/key``. ``key`` never starts with a slash; it may be empty (bucket root)."""

    bucket: str
    key: str = ""

    @classmethod
    def parse(cls, text: Union[str, S3Uri]) -> S3Uri:
        if isinstance(text, S3Uri):
            return text
        raw = str(text).strip()
        if not raw.startswith("s3://"):
            raise StorageError(
                f"'{raw}' is not an S3 address.",
                "write it as s3://bucket/prefix (for example s3://my-bucket/datasets/thai).",
            )
        rest = raw[len("s3://") :]
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise StorageError(f"'{raw}' has no bucket name.", "write it as s3://bucket/prefix.")
        if any(c in bucket for c in " \\") or len(bucket) < 3 or len(bucket) > 63:
            raise StorageError(
                f"'{bucket}' in '{raw}' is not a valid bucket name.",
                "bucket names are 3-63 characters: lowercase letters, digits, '.' and '-'.",
            )
        if any(part in (".", "..") for part in key.split("/")):
            raise StorageError(
                f"'{raw}' has a '.' or '..' segment: S3 keys are names, not paths, so it would "
                "name a folder literally called '..' (or be refused by the server).",
                "write the prefix without '.' and '..' segments, e.g. s3://bucket/runs/exp1.",
            )
        return cls(bucket, key.lstrip("/"))

    def join(self, *parts: str) -> S3Uri:
        pieces = [self.key.rstrip("/")] if self.key.strip("/") else []
        for part in parts:
            part = str(part).strip("/")
            if part:
                pieces.append(part)
        return S3Uri(self.bucket, "/".join(pieces))

    @property
    def prefix(self) -> str:
        """The key as a folder prefix: '' for the bucket root, else ending with '/'."""
        key = self.key
        if not key:
            return ""
        return key if key.endswith("/") else key + "/"

    @property
    def name(self) -> str:
        return posixpath.basename(self.key.rstrip("/"))

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"
