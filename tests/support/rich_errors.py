"""Read the google.rpc details of a failed call the standard way (grpcio-status), for assertions."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass
class Details:
    info: error_details_pb2.ErrorInfo
    bad_request: error_details_pb2.BadRequest | None
    retry: error_details_pb2.RetryInfo | None

    @property
    def retry_after_s(self) -> float | None:
        if self.retry is None:
            return None
        return float(self.retry.retry_delay.seconds + self.retry.retry_delay.nanos / 1e9)

    @property
    def fields(self) -> list[str]:
        return [v.field for v in self.bad_request.field_violations] if self.bad_request else []


def details(error: grpc.RpcError) -> Details:
    """The call's details; fails the test when the status carries none, or disagrees with the call's code."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "the status carries no google.rpc details"
    info, bad, retry = None, None, None
    for detail in status.details:
        for message in (
            error_details_pb2.ErrorInfo(),
            error_details_pb2.BadRequest(),
            error_details_pb2.RetryInfo(),
        ):
            if detail.Unpack(message):
                if isinstance(message, error_details_pb2.ErrorInfo):
                    info = message
                elif isinstance(message, error_details_pb2.BadRequest):
                    bad = message
                else:
                    retry = message
    assert info is not None, "every error carries ErrorInfo"
    assert info.domain == "modelyard.dev"
    return Details(info, bad, retry)
