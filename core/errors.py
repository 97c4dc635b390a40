"""Errors that carry the gRPC status they mean, so every layer can raise and only the servicer translates.

Each also carries what `core.rich_status` sends as google.rpc error details: a stable `reason` (ErrorInfo),
the field at fault (BadRequest, for INVALID_ARGUMENT), how long to wait before a retry (RetryInfo) and any
facts a program may act on (ErrorInfo metadata). Reasons are part of the API: never rename one.
"""

from __future__ import annotations

import re

import grpc

# "messages[2].tool_calls[0].arguments: not valid JSON" names its field before the colon.
_FIELD_PREFIX = re.compile(r"^([A-Za-z_][\w]*(?:\[\d*\])?(?:\.[A-Za-z_][\w]*(?:\[\d*\])?)*): ")


class StatusError(Exception):
    """A failure with a definite gRPC status and a message safe to show the caller."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    reason: str = "UNKNOWN"  # google.rpc.ErrorInfo.reason: UPPER_SNAKE_CASE, stable
    # How long the caller should wait before trying again, when known (an upstream's Retry-After).
    retry_after_s: float | None = None

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        retry_after_s: float | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        if retry_after_s is not None:
            self.retry_after_s = retry_after_s
        self.metadata: dict[str, str] = dict(metadata or {})  # ErrorInfo.metadata

    @property
    def field(self) -> str | None:
        """The request field at fault, for INVALID_ARGUMENT's BadRequest detail."""
        return None

    @property
    def trailers(self) -> tuple[tuple[str, str], ...]:
        """Extra trailing metadata that goes out with the status (the rich details are added apart)."""
        return ()


class InvalidArgument(StatusError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"

    def __init__(self, message: str, *, field: str | None = None, reason: str | None = None) -> None:
        super().__init__(message, reason=reason)
        match = _FIELD_PREFIX.match(message)
        self._field = field if field is not None else (match.group(1) if match else None)

    @property
    def field(self) -> str | None:
        return self._field


class NotFound(StatusError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class ModelNotFound(NotFound):
    reason = "MODEL_NOT_FOUND"


class Unavailable(StatusError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"


class NoBackendAvailable(Unavailable):
    reason = "NO_BACKEND_AVAILABLE"


class CapacityExhausted(StatusError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "CAPACITY_EXHAUSTED"


class FailedPrecondition(StatusError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class DeadlineExceeded(StatusError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


class Unauthenticated(StatusError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class PermissionDenied(StatusError):
    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class BudgetExceeded(StatusError):
    """A tenant's token or cost limit would be passed; the message names the limit."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "BUDGET_EXCEEDED"


class RateLimited(StatusError):
    """A tenant's rate or concurrency limit, or the router's upload capacity, is reached for now.

    `retry_after_s` (RetryInfo, and the HTTP door's Retry-After) says when trying again may succeed; the
    message says it too. ErrorInfo metadata `limit` names the setting.
    """

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RATE_LIMITED"

    def __init__(self, message: str, retry_after_s: float, *, limit: str) -> None:
        delay = max(0.0, retry_after_s)
        super().__init__(f"{message}; retry in {delay:.1f} s", retry_after_s=delay, metadata={"limit": limit})


class AlreadyExists(StatusError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"
