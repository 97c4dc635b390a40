"""The Python clients send the caller's OpenTelemetry trace context (W3C traceparent), and nothing without one."""

from __future__ import annotations

import pytest
from modelyard_client import AsyncClient, Client
from opentelemetry.sdk.trace import TracerProvider

from tests.client.router_double import RouterDouble

TRACER = TracerProvider().get_tracer(
    "caller"
)  # not installed globally: the span is current only in its block


def sent_traceparent(double: RouterDouble) -> str | None:
    return double.metadata[-1].get("traceparent")


def test_the_sync_client_sends_the_current_span(double: RouterDouble, address: str) -> None:
    with Client(address, timeout=10) as client:
        client.models()
        assert sent_traceparent(double) is None  # no span: no header
        with TRACER.start_as_current_span("caller") as span:
            client.models()
    context = span.get_span_context()
    assert (sent_traceparent(double) or "").startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")


async def test_the_async_client_sends_the_current_span(double: RouterDouble, address: str) -> None:
    async with AsyncClient(address, timeout=10) as client:
        with TRACER.start_as_current_span("caller") as span:
            await client.models()
    context = span.get_span_context()
    assert (sent_traceparent(double) or "").startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")


@pytest.mark.parametrize("key", [None, "sk-test"])
def test_the_key_still_goes_beside_it(double: RouterDouble, address: str, key: str | None) -> None:
    with Client(address, api_key=key or "", timeout=10) as client, TRACER.start_as_current_span("caller"):
        client.models()
    sent = double.metadata[-1]
    assert "traceparent" in sent
    assert sent.get("authorization") == (f"Bearer {key}" if key else None)
