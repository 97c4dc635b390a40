"""The one place a StatusError becomes an HTTP answer: OpenAI's error JSON with the matching status.

The openai SDKs choose their exception class by HTTP status (400 BadRequestError, 401 AuthenticationError,
403 PermissionDeniedError, 404 NotFoundError, 429 RateLimitError, 5xx InternalServerError), so the status is
what matters to a caller's program; `type` and `code` follow OpenAI's own words, and `param` names the
field at fault when the message starts with one ("messages[0].content: ...").
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import grpc
from aiohttp import web

from core.errors import BudgetExceeded, ModelNotFound, StatusError

_S = grpc.StatusCode
# gRPC status -> (HTTP status, OpenAI error type)
_BY_CODE: dict[grpc.StatusCode, tuple[int, str]] = {
    _S.INVALID_ARGUMENT: (400, "invalid_request_error"),
    _S.FAILED_PRECONDITION: (400, "invalid_request_error"),
    _S.OUT_OF_RANGE: (400, "invalid_request_error"),
    _S.UNAUTHENTICATED: (401, "authentication_error"),
    _S.PERMISSION_DENIED: (403, "permission_error"),
    _S.NOT_FOUND: (404, "not_found_error"),
    _S.ALREADY_EXISTS: (409, "invalid_request_error"),
    _S.RESOURCE_EXHAUSTED: (429, "rate_limit_error"),
    _S.CANCELLED: (499, "cancelled"),
    _S.UNIMPLEMENTED: (501, "not_implemented"),
    _S.UNAVAILABLE: (503, "service_unavailable"),
    _S.DEADLINE_EXCEEDED: (504, "timeout"),
}
# Retry-After when the error does not say: a 429 or 503 the caller may retry, after a short pause.
DEFAULT_RETRY_AFTER_S = 1.0
_FIELD = re.compile(r"^([A-Za-z_][\w.\[\]]*): ")


@dataclass(frozen=True)
class HttpError:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]

    def response(self) -> web.Response:
        return web.json_response(self.body, status=self.status, headers=self.headers)

    def sse_event(self) -> bytes:
        """The error inside a stream that has started: the openai SDKs raise APIError on it."""
        return b"data: " + json.dumps(self.body).encode() + b"\n\n"


def http_error(error: StatusError) -> HttpError:
    status, kind = _BY_CODE.get(error.code, (500, "server_error"))
    field = _FIELD.match(error.message)
    body = {
        "error": {
            "message": error.message,
            "type": kind,
            "param": error.field or (field.group(1) if field else None),
            "code": _code(error),
        }
    }
    headers = {}
    if status in (429, 503):
        retry_after = error.retry_after_s or DEFAULT_RETRY_AFTER_S
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return HttpError(status, body, headers)


def plain_error(status: int, message: str, kind: str = "invalid_request_error") -> HttpError:
    """An error found by the HTTP layer itself (unknown path, body too large)."""
    return HttpError(status, {"error": {"message": message, "type": kind, "param": None, "code": None}}, {})


def _code(error: StatusError) -> str:
    """OpenAI's own code where one means the same; else the error's stable reason (google.rpc.ErrorInfo)."""
    if isinstance(error, ModelNotFound):
        return "model_not_found"
    if isinstance(error, BudgetExceeded):
        return "insufficient_quota"
    if error.code == _S.UNAUTHENTICATED:
        return "invalid_api_key"
    return error.reason.lower()
