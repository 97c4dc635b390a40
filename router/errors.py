"""Errors that carry the gRPC status they mean, so every layer can raise and only the servicer translates."""

from __future__ import annotations

import grpc


class RouterError(Exception):
    """A failure with a definite gRPC status and a message safe to show the caller."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(RouterError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class ModelNotFound(RouterError):
    code = grpc.StatusCode.NOT_FOUND


class NoBackendAvailable(RouterError):
    code = grpc.StatusCode.UNAVAILABLE


class CapacityExhausted(RouterError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(RouterError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Unauthenticated(RouterError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(RouterError):
    code = grpc.StatusCode.PERMISSION_DENIED


class BudgetExceeded(RouterError):
    """A tenant's token or cost limit would be passed; the message names the limit."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
