"""One exception class per gRPC status the router uses, so callers catch meanings, not grpc types."""

from __future__ import annotations

import grpc


class ModelyardError(Exception):
    """A call failed. `code` is the gRPC status name (e.g. "NOT_FOUND"); `message` is the server's text."""

    code: str = "UNKNOWN"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidArgument(ModelyardError):
    code = "INVALID_ARGUMENT"


class NotFound(ModelyardError):
    code = "NOT_FOUND"


class Unauthenticated(ModelyardError):
    code = "UNAUTHENTICATED"


class PermissionDenied(ModelyardError):
    code = "PERMISSION_DENIED"


class ResourceExhausted(ModelyardError):
    code = "RESOURCE_EXHAUSTED"


class FailedPrecondition(ModelyardError):
    code = "FAILED_PRECONDITION"


class Unavailable(ModelyardError):
    """No healthy backend, or the router itself cannot be reached."""

    code = "UNAVAILABLE"


class DeadlineExceeded(ModelyardError):
    code = "DEADLINE_EXCEEDED"


class Cancelled(ModelyardError):
    code = "CANCELLED"


class Unimplemented(ModelyardError):
    code = "UNIMPLEMENTED"


class Internal(ModelyardError):
    code = "INTERNAL"


_BY_CODE: dict[grpc.StatusCode, type[ModelyardError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.CANCELLED: Cancelled,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
    grpc.StatusCode.INTERNAL: Internal,
}


def from_rpc_error(error: grpc.RpcError) -> ModelyardError:
    """The public exception for a failed call; raise it `from` the grpc error so tracebacks keep the cause."""
    # A bare grpc.RpcError (never from a real call) has no code(); treat it as UNKNOWN.
    code_of = getattr(error, "code", None)
    status: grpc.StatusCode = code_of() if callable(code_of) else grpc.StatusCode.UNKNOWN
    details_of = getattr(error, "details", None)
    message = (details_of() if callable(details_of) else None) or status.name.lower().replace("_", " ")
    cls = _BY_CODE.get(status, ModelyardError)
    return cls(message, code=status.name)
