"""The shared worker token: workers send it when they register, the router sends it when it calls a worker.

For setups without certificates. It travels as call metadata, so on anything but loopback it belongs inside
TLS. Read from MODELYARD_WORKER_TOKEN or a file (a Kubernetes Secret mounted as a file); compared in
constant time; never logged.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

TOKEN_ENV = "MODELYARD_WORKER_TOKEN"
METADATA_KEY = "x-modelyard-worker-token"
MIN_TOKEN_CHARS = 16  # a guessable token is no credential


class WorkerTokenError(ValueError):
    pass


def load_worker_token(token_file: str = "", env: Mapping[str, str] | None = None) -> str:
    """The token from `token_file` when given, else $MODELYARD_WORKER_TOKEN; "" when neither is set."""
    env = os.environ if env is None else env
    if token_file:
        try:
            token = Path(token_file).expanduser().read_text().strip()
        except OSError as e:
            raise WorkerTokenError(f"worker token file {token_file}: {e.strerror or e}") from e
        where = f"worker token file {token_file}"
    else:
        token = env.get(TOKEN_ENV, "").strip()
        where = TOKEN_ENV
    if token and len(token) < MIN_TOKEN_CHARS:
        raise WorkerTokenError(f"{where}: the token must be at least {MIN_TOKEN_CHARS} characters")
    return token


def token_metadata(token: str) -> tuple[tuple[str, str], ...]:
    return ((METADATA_KEY, token),) if token else ()


def presented_token(metadata: Iterable[tuple[str, Any]] | None) -> str:
    for name, value in metadata or ():
        if name == METADATA_KEY:
            return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return ""


def token_matches(metadata: Iterable[tuple[str, Any]] | None, expected: str) -> bool:
    return hmac.compare_digest(presented_token(metadata).encode(), expected.encode())
