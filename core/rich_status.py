"""A StatusError as a google.rpc.Status with standard error details, the way every gRPC language reads them.

The details travel in the `grpc-status-details-bin` trailer (grpcio-status); clients in any language decode
them with their gRPC library's status helpers:
- ErrorInfo, always: a stable `reason`, the `domain` below, and metadata (e.g. `messages_sent` on a broken
  stream, `retry_after_s` beside RetryInfo);
- BadRequest, for INVALID_ARGUMENT: the field at fault and what is wrong with it;
- RetryInfo, when waiting helps: an upstream rate limit, a budget until its period resets, capacity,
  an open circuit until its cool-down ends.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from core.errors import StatusError

DOMAIN = "modelyard.dev"
_DETAILS_KEY = "grpc-status-details-bin"  # where grpcio-status puts the google.rpc.Status


def status_proto(error: StatusError) -> status_pb2.Status:
    details = [_packed(error_info(error))]
    if error.code == grpc.StatusCode.INVALID_ARGUMENT or error.field is not None:
        # An upstream's refusal may name no field we know: the violation then has an empty field.
        field = error.field or ""
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=field, description=_description(error.message, field) if field else error.message
        )
        details.append(_packed(error_details_pb2.BadRequest(field_violations=[violation])))
    if error.retry_after_s is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(round(max(0.0, error.retry_after_s) * 1e9))
        details.append(_packed(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status_pb2.Status(code=_code(error.code), message=error.message, details=details)


def reason_of(trailers: grpc.aio.Metadata | None) -> str:
    """The ErrorInfo reason in a failed call's trailers; "" when it carries none."""
    for key, value in trailers or ():
        if key == _DETAILS_KEY and isinstance(value, bytes):
            for detail in status_pb2.Status.FromString(value).details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return str(info.reason)
    return ""


def error_info(error: StatusError) -> error_details_pb2.ErrorInfo:
    metadata = dict(error.metadata)
    if error.retry_after_s is not None:
        metadata.setdefault("retry_after_s", f"{error.retry_after_s:g}")
    return error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=metadata)


def trailing_metadata(error: StatusError) -> tuple[tuple[str, str | bytes], ...]:
    """The trailers to end the call with: the details (grpc-status-details-bin) and the error's own."""
    status = rpc_status.to_status(status_proto(error))
    return (*status.trailing_metadata, *error.trailers)


def _code(code: grpc.StatusCode) -> int:
    value = code.value[0]
    assert isinstance(value, int)
    return value if value in code_pb2.Code.values() else code_pb2.UNKNOWN


def _description(message: str, field: str) -> str:
    return message.removeprefix(f"{field}: ")


def _packed(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed
