"""What the pipeline needs from an HTTP request: the caller's credentials, its deadline, its JSON body."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator

from aiohttp import web

from core import fast_json
from core.errors import DeadlineExceeded, InvalidArgument
from router.pipeline import Call
from router.services.http.fields import Json

# Seconds the caller will wait, like a gRPC deadline; none: no deadline.
TIMEOUT_HEADER = "x-modelyard-timeout"


def call_of(request: web.Request) -> Call:
    """`Authorization: Bearer <key>` (or Anthropic's `x-api-key: <key>`) travels as the same `authorization`
    metadata gRPC callers send."""
    authorization = request.headers.get("Authorization")
    if not authorization and (key := request.headers.get("x-api-key")):
        authorization = f"Bearer {key}"
    metadata = (("authorization", authorization),) if authorization else ()
    deadline = None
    if raw := request.headers.get(TIMEOUT_HEADER):
        try:
            seconds = float(raw)
        except ValueError:
            seconds = math.nan
        if not seconds > 0 or math.isinf(seconds):
            raise InvalidArgument(f"{TIMEOUT_HEADER}: expected a positive number of seconds, got {raw!r}")
        deadline = time.monotonic() + seconds
    return Call(metadata=metadata, deadline=deadline)


async def json_body(request: web.Request) -> Json:
    """The body as a JSON object. aiohttp refuses one over the size limit (413) before it is read whole."""
    raw = await request.read()
    try:
        body = fast_json.loads(raw)
    except ValueError as e:
        raise InvalidArgument(f"body: not valid JSON ({e})") from None
    except RecursionError:
        raise InvalidArgument("body: JSON nested too deeply") from None
    if not isinstance(body, dict):
        raise InvalidArgument("body: expected a JSON object")
    return body


@contextlib.asynccontextmanager
async def within_deadline(call: Call) -> AsyncIterator[None]:
    """The caller's deadline over the whole answer, as a gRPC deadline cancels the call: DeadlineExceeded."""
    if call.deadline is None:
        yield
        return
    try:
        async with asyncio.timeout(call.deadline - time.monotonic()):
            yield
    except TimeoutError:
        raise DeadlineExceeded(f"{TIMEOUT_HEADER}: no answer within the time the caller gave") from None
