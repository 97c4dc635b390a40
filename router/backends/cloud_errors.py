"""HTTP failures of cloud APIs as `BackendError`s: one table for every provider SDK.

Each SDK's own mapper (openai_backend, anthropic_backend) only pulls the HTTP status, headers and
message out of its exception classes; what a status means for failover is decided here, once.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

import grpc

from router.backends.base import BackendError

_MAX_DETAIL = 300
_REDACTED = "[redacted]"


def redact(text: str, secret: str) -> str:
    """`text` with every occurrence of `secret` removed (an upstream message may quote the key back)."""
    return text.replace(secret, _REDACTED) if secret else text


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms` (OpenAI), or `Retry-After` as seconds or an HTTP date."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def http_status_error(
    provider: str,
    status: int,
    detail: str,
    *,
    secret: str,
    retry_after_s: float | None = None,
    unknown_model: bool = False,
) -> BackendError:
    """What an HTTP error status from `provider` means to the router.

    The caller's fault (bad input, unknown model) is final; anything about the provider itself
    (overload, outage, our credentials or account) lets another backend try.
    """
    if status in (401, 403):
        # Never the upstream text here: providers quote (part of) the rejected key back.
        return BackendError(
            f"provider {provider} rejected the router's credentials (HTTP {status})",
            retryable=True,
            status=grpc.StatusCode.UNAVAILABLE,
        )
    message = f"provider {provider}: HTTP {status}: {_clip(redact(detail, secret))}"
    if status == 429:
        return BackendError(
            message,
            retryable=True,
            status=grpc.StatusCode.RESOURCE_EXHAUSTED,
            retry_after_s=retry_after_s,
        )
    if status == 408:
        return BackendError(message, retryable=True, status=grpc.StatusCode.DEADLINE_EXCEEDED)
    if status >= 500 or status in (402, 409):
        # 402: our account is out of credit; 409: OpenAI's transient lock conflict. Neither is the caller's.
        return BackendError(message, retryable=True, status=grpc.StatusCode.UNAVAILABLE)
    if status == 404 and unknown_model:
        return BackendError(message, retryable=False, status=grpc.StatusCode.NOT_FOUND)
    return BackendError(message, retryable=False, status=grpc.StatusCode.INVALID_ARGUMENT)


def connection_error(provider: str, detail: str, *, secret: str, timed_out: bool) -> BackendError:
    detail = redact(detail, secret)
    if timed_out:
        return BackendError(
            f"provider {provider}: timed out: {_clip(detail)}",
            retryable=True,
            status=grpc.StatusCode.DEADLINE_EXCEEDED,
        )
    return BackendError(
        f"provider {provider}: connection failed: {_clip(detail)}",
        retryable=True,
        status=grpc.StatusCode.UNAVAILABLE,
    )


def broken_stream(provider: str, detail: str, *, secret: str) -> BackendError:
    """The answer stopped making sense or stopped early: the router decides whether to go elsewhere."""
    detail = redact(detail, secret)
    return BackendError(
        f"provider {provider}: stream broken: {_clip(detail)}",
        retryable=True,
        status=grpc.StatusCode.UNAVAILABLE,
    )


def error_body_message(body: object) -> str:
    """`error.message` of an OpenAI- or Anthropic-style error body ({"error": {"message": ...}}, or the
    error itself); "" when it has none."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return ""


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."
