"""The one redaction: what may hold a credential (a tracking URI with ``user:password@``, a
``?token=`` query, a ``password=`` in an error message) is shown, logged, stored and sent
only through :func:`redact`. Used by every log line (``logs``), problem-log entry, state file
(``run-state.json``), metric tag and SageMaker request rectrain writes.

A redacted URI cannot be used to connect: code that needs the real one re-reads it from where
the user gave it (``--mlflow-uri``, ``MLFLOW_TRACKING_URI``): :func:`real_uri`.
"""

from __future__ import annotations

import re
from typing import Iterable, List, Mapping, Optional

MASK = "***"

# scheme://user:password@host or scheme://token@host: the userinfo goes
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s@'\"<>]+)@")
# token=..., password: ..., api_key=... in queries, messages, command lines
_SECRET_WORDS = (r"token|access_token|auth_token|id_token|refresh_token|password|passwd|pwd|"
                 r"secret|client_secret|api_key|apikey|x-amz-signature|x-amz-security-token|"
                 r"x-amz-credential|signature|aws_secret_access_key|aws_session_token")
_KEY_VALUE = re.compile(rf"(?P<key>\b(?:{_SECRET_WORDS})\b\s*[=:]\s*)(?P<value>[^\s&;,'\"<>]+)",
                        re.IGNORECASE)
# names of environment variables that look like they hold a secret
_SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|CREDENTIAL|"
                          r"PRIVATE_?KEY|AUTH|SESSION_?KEY|SIGNING_?KEY)", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with URL userinfo and ``token=``/``password=``-like values replaced by ``***``."""
    if not text:
        return text
    out = _USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    return _KEY_VALUE.sub(lambda m: f"{m.group('key')}{MASK}", out)


def has_credentials(uri: str) -> bool:
    """Whether ``uri`` carries a credential :func:`redact` would remove."""
    return redact(uri) != uri


def secret_looking(names: Iterable[str]) -> List[str]:
    """The names (environment keys) that look like they hold a secret."""
    return sorted(n for n in names if _SECRET_NAME.search(n))


def real_uri(stored: Optional[str], *candidates: Optional[str]) -> Optional[str]:
    """The usable URI whose redacted form is ``stored`` (what a state file keeps): the first
    of ``candidates`` (the flag, the environment) that redacts to it, else ``stored`` itself
    (which then had no credential, or the credential comes from the environment, as MLflow's
    ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``)."""
    for candidate in candidates:
        if candidate and stored and redact(candidate) == stored:
            return candidate
    return stored


def redact_mapping(values: Mapping[str, str]) -> dict:
    """A copy of ``values`` with every value redacted."""
    return {k: redact(str(v)) for k, v in values.items()}


def redact_data(value: object) -> object:
    """A copy of JSON-like data (dicts, lists, strings) with every string redacted: what a
    state file or a request holds."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_data(v) for v in value]
    return value
