"""Errors that carry the gRPC status they mean, so every layer can raise and only the servicer translates."""

from __future__ import annotations

import grpc


class StatusError(Exception):
    """A failure with a definite gRPC status and a message safe to show the caller."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    # How long the caller should wait before trying again, when known (an upstream's Retry-After).
    retry_after_s: float | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def trailers(self) -> tuple[tuple[str, str], ...]:
        """Trailing metadata that goes out with the status, for the caller's program to read."""
        return ()


class InvalidArgument(StatusError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(StatusError):
    code = grpc.StatusCode.NOT_FOUND


class ModelNotFound(NotFound):
    pass


class Unavailable(StatusError):
    code = grpc.StatusCode.UNAVAILABLE


class NoBackendAvailable(Unavailable):
    pass


class CapacityExhausted(StatusError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(StatusError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class DeadlineExceeded(StatusError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unauthenticated(StatusError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(StatusError):
    code = grpc.StatusCode.PERMISSION_DENIED


class BudgetExceeded(StatusError):
    """A tenant's token or cost limit would be passed; the message names the limit."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
