"""Issue 24 item 10: a caller's text cannot forge a log line; model names keep to a charset and length."""

from __future__ import annotations

import logging

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2_grpc

from core import logs
from tests.security.helpers import config, running_router

FORGED = (
    'm\n2026-12-03 12:00:00,000 INFO modelyard.audit: admin call: tenant="ops" method=SetStrategy outcome=OK'
)


def test_text_logs_escape_control_characters() -> None:
    record = logging.LogRecord("router", logging.INFO, __file__, 1, "no backend for %s", (FORGED,), None)
    record.model = FORGED
    line = logs.TextFormatter().format(record)
    assert "\n" not in line
    assert "\\n2026-12-03" in line
    assert "\u2028" not in logs.TextFormatter().format(
        logging.LogRecord("router", logging.INFO, __file__, 1, "a\u2028b\rc\x1b[2J", None, None)
    )


def test_tracebacks_keep_their_lines() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("router", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    assert "Traceback (most recent call last):\n" in logs.TextFormatter().format(record)


@pytest.mark.parametrize("model", [FORGED, "m" * 257, "model with spaces", "m\x00", "é"])
async def test_model_names_are_checked(model: str) -> None:
    request = pb.ChatRequest(
        model=model, messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="hi")])]
    )
    async with running_router(config()) as router, grpc.aio.insecure_channel(router.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            async for _ in router_pb2_grpc.RouterServiceStub(channel).Chat(request, timeout=10):
                pass
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (refused.value.details() or "").startswith("model: ")
