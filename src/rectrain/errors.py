"""Error classes and exit codes.

User errors (bad data, bad config, missing permission, missing tool) and internal errors
(a bug in rectrain, an engine crash we did not recognise) are different classes with
different exit codes, as in the SageMaker training toolkit's ``ClientError``.
Every message is written for a user and ends with the fix.
"""

from __future__ import annotations

import errno
import os
from typing import Optional

# Exit codes, shared by every command.
EXIT_OK = 0
EXIT_FINDINGS = 1  # the command ran and found problems (validate, doctor, s3 check)
EXIT_USER_ERROR = 2  # could not run: usage, bad input, bad config, missing permission
EXIT_INTERNAL_ERROR = 3  # a bug or an unexpected failure
EXIT_INTERRUPTED = 75  # stopped by SIGTERM/SIGINT (Ctrl-C), any command, after keeping finished work;
# training: rerun with --resume; other commands: rerun the same command
EXIT_ENGINE_FAILED = 4  # the training engine failed (classified failure)
EXIT_NOT_UPLOADED = 5  # training finished and everything is saved locally, but its final
# checkpoint(s) did not reach S3 (--checkpoint-s3); the message names them and the
# `rectrain ckpt push RUN_DIR S3_PREFIX` command that uploads them


class RectrainError(Exception):
    """Base class. ``fix`` is appended to the message as the last sentence."""

    exit_code = EXIT_INTERNAL_ERROR

    def __init__(self, message: str, fix: Optional[str] = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if self.fix:
            return f"{self.message} Fix: {self.fix}"
        return self.message


class UserError(RectrainError):
    """Something the user can fix: input data, configuration, environment, permissions."""

    exit_code = EXIT_USER_ERROR


class DataError(UserError):
    """Bad input data (labels, images, dictionary). Names the file and line."""

    def __init__(self, message: str, fix: Optional[str] = None, *, path: Optional[str] = None,
                 line: Optional[int] = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message, fix)
        self.path = path
        self.line = line


class ConfigError(UserError):
    """A training or job configuration that cannot work. Names the field."""


class EnvironmentProblem(UserError):
    """A missing tool, engine, font, GPU or service."""


class StorageError(UserError):
    """S3 could not be used (unreachable endpoint, missing bucket, bad credentials)."""


class PermissionProblem(StorageError):
    """An S3/IAM action was denied. Names the action and the resource."""

    def __init__(self, message: str, fix: Optional[str] = None, *, action: str = "",
                 resource: str = "") -> None:
        super().__init__(message, fix)
        self.action = action
        self.resource = resource


class IntegrityError(UserError):
    """A transferred file does not match its checksum or manifest."""


class EngineFailure(RectrainError):
    """The PaddleOCR engine failed; ``kind`` is the classified failure class."""

    exit_code = EXIT_ENGINE_FAILED

    def __init__(self, message: str, fix: Optional[str] = None, *, kind: str = "unknown") -> None:
        super().__init__(message, fix)
        self.kind = kind


class CheckpointsNotUploaded(RectrainError):
    """A run finished (everything kept locally) but its final checkpoints are not in S3."""

    exit_code = EXIT_NOT_UPLOADED


class Interrupted(RectrainError):
    """The run was interrupted (SIGTERM/SIGINT) after its state was saved."""

    exit_code = EXIT_INTERRUPTED


class InternalError(RectrainError):
    """A bug in rectrain."""

    exit_code = EXIT_INTERNAL_ERROR


_OS_FIXES = {
    errno.ENOENT: "check the path (it does not exist).",
    errno.EACCES: "check the permissions of the path (or choose a folder you can write to).",
    errno.EPERM: "check the permissions of the path (or choose a folder you can write to).",
    errno.EROFS: "the file system is read-only: choose a writable folder.",
    errno.ENOTDIR: "a part of the path is a file, not a folder: fix the path.",
    errno.EISDIR: "the path is a folder where a file is expected: pass a file path.",
    errno.EEXIST: "the path exists already: choose another one or remove it.",
    errno.ENOSPC: "the disk is full: free space (or use another disk) and rerun.",
    errno.EDQUOT: "the disk quota is exceeded: free space and rerun.",
    errno.ENAMETOOLONG: "the path is too long: use a shorter one.",
    errno.ELOOP: "the path has a symbolic-link loop: fix the link.",
}


def user_os_error(exc: OSError) -> Optional[UserError]:
    """An OS error about a path the user gave (missing, not writable, disk full, ...) as a
    :class:`UserError` naming the path and the fix; ``None`` for other OS errors (bugs)."""
    fix = _OS_FIXES.get(exc.errno) if exc.errno is not None else None
    if fix is None or (exc.filename is None and exc.errno not in (errno.ENOSPC, errno.EDQUOT)):
        return None
    if exc.errno == errno.EEXIST and exc.filename is not None and os.path.isfile(exc.filename):
        fix = "a folder is needed there: choose another path, or move that file away."
        err = UserError(f"{exc.filename} is a file, not a folder.", fix)
        err.__cause__ = exc
        return err
    where = f"{exc.filename}: " if exc.filename is not None else ""
    if getattr(exc, "filename2", None):
        where = f"{exc.filename} -> {exc.filename2}: "
    err = UserError(f"{where}{exc.strerror or exc}.", fix)
    err.__cause__ = exc
    return err
