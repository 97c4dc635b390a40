"""One exception class per gRPC status the router uses, so callers catch meanings, not grpc types.

Each carries the server's google.rpc error details: a stable `reason` (e.g. "BUDGET_EXCEEDED"), the fields at
fault for INVALID_ARGUMENT, how long to wait before retrying (`retry_after`), and facts such as
`messages_sent` when a stream broke after it started.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class FieldViolation:
    field: str  # e.g. "tools[0].parameters"; empty when the server could not name one
    description: str


class ModelyardError(Exception):
    """A call failed. `code` is the gRPC status name (e.g. "NOT_FOUND"); `message` is the server's text."""

    code: str = "UNKNOWN"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        reason: str = "",
        metadata: dict[str, str] | None = None,
        field_violations: tuple[FieldViolation, ...] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.reason = reason  # stable, for programs: branch on this, not on the message
        self.metadata: dict[str, str] = dict(metadata or {})
        self.field_violations = field_violations
        self.retry_after = retry_after  # seconds; None when waiting would not help or is unknown

    @property
    def field(self) -> str | None:
        """The first field at fault (INVALID_ARGUMENT), if the server named one."""
        return next((v.field for v in self.field_violations if v.field), None)

    @property
    def messages_sent(self) -> int | None:
        """On a stream that broke after it started: how many messages arrived before the break."""
        sent = self.metadata.get("messages_sent")
        return int(sent) if sent is not None else None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __init_subclass__(cls, code: str | None = None, **kwargs: Any) -> None:
        """`class NotFound(ModelyardError, code="NOT_FOUND")` sets `NotFound.code` and maps that status to it;
        a subclass without `code` keeps its parent's and maps nothing."""
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code
            _BY_CODE[grpc.StatusCode[code]] = cls


_BY_CODE: dict[grpc.StatusCode, type[ModelyardError]] = {}


class InvalidArgument(ModelyardError, code="INVALID_ARGUMENT"): ...


class NotFound(ModelyardError, code="NOT_FOUND"): ...


class Unauthenticated(ModelyardError, code="UNAUTHENTICATED"): ...


class PermissionDenied(ModelyardError, code="PERMISSION_DENIED"): ...


class ResourceExhausted(ModelyardError, code="RESOURCE_EXHAUSTED"): ...


class FailedPrecondition(ModelyardError, code="FAILED_PRECONDITION"): ...


class Unavailable(ModelyardError, code="UNAVAILABLE"):
    """No healthy backend, or the router itself cannot be reached."""


class DeadlineExceeded(ModelyardError, code="DEADLINE_EXCEEDED"): ...


class Cancelled(ModelyardError, code="CANCELLED"): ...


class Unimplemented(ModelyardError, code="UNIMPLEMENTED"): ...


class Internal(ModelyardError, code="INTERNAL"): ...


_BY_CODE[grpc.StatusCode.OUT_OF_RANGE] = InvalidArgument  # a bad value, like INVALID_ARGUMENT's


def from_rpc_error(error: grpc.RpcError) -> ModelyardError:
    """The public exception for a failed call; raise it `from` the grpc error so tracebacks keep the cause."""
    # A bare grpc.RpcError (never from a real call) has no code(); treat it as UNKNOWN.
    code_of = getattr(error, "code", None)
    status: grpc.StatusCode = code_of() if callable(code_of) else grpc.StatusCode.UNKNOWN
    details_of = getattr(error, "details", None)
    message = (details_of() if callable(details_of) else None) or status.name.lower().replace("_", " ")
    cls = _BY_CODE.get(status, ModelyardError)
    trailers_of = getattr(error, "trailing_metadata", None)
    rich = _rich_status(trailers_of() if callable(trailers_of) else None)
    if rich is None:
        return cls(message, code=status.name)
    return cls(message, code=status.name, **_details(rich))


def _rich_status(trailers: Iterable[Any] | None) -> status_pb2.Status | None:
    for item in trailers or ():
        key, value = item if isinstance(item, tuple) else (item, None)
        if key == _DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status()
            try:
                status.ParseFromString(value)
            except Exception:  # a malformed trailer: the plain status still stands
                return None
            return status
    return None


def _details(status: status_pb2.Status) -> dict[str, Any]:
    found: dict[str, Any] = {}
    violations: list[FieldViolation] = []
    for detail in status.details:
        info, bad, retry = (
            error_details_pb2.ErrorInfo(),
            error_details_pb2.BadRequest(),
            error_details_pb2.RetryInfo(),
        )
        if detail.Unpack(info):
            found["reason"], found["metadata"] = info.reason, dict(info.metadata)
        elif detail.Unpack(bad):
            violations += [FieldViolation(v.field, v.description) for v in bad.field_violations]
        elif detail.Unpack(retry):
            found["retry_after"] = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
    found["field_violations"] = tuple(violations)
    return found
