"""Error classes and exit codes.

User errors (bad data, bad config, missing permission, missing tool) and internal errors
(a bug in rectrain, an engine crash we did not recognise) are different classes with
different exit codes, as in the SageMaker training toolkit's ``ClientError``.
Every message is written for a user and ends with the fix.
"""

from __future__ import annotations

from typing import Optional

# Exit codes, shared by every command.
EXIT_OK = 0
EXIT_FINDINGS = 1  # the command ran and found problems (validate, doctor, s3 check)
EXIT_USER_ERROR = 2  # could not run: usage, bad input, bad config, missing permission
EXIT_INTERNAL_ERROR = 3  # a bug or an unexpected failure
EXIT_INTERRUPTED = 75  # stopped by SIGTERM/SIGINT after saving state; rerun with --resume
EXIT_ENGINE_FAILED = 4  # the training engine failed (classified failure)


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


class Interrupted(RectrainError):
    """The run was interrupted (SIGTERM/SIGINT) after its state was saved."""

    exit_code = EXIT_INTERRUPTED


class InternalError(RectrainError):
    """A bug in rectrain."""

    exit_code = EXIT_INTERNAL_ERROR
