"""The client's default service config: UNAVAILABLE before any answer is retried; once text has come back,
never (gRPC retries only before the response starts)."""

from __future__ import annotations

import pytest
from modelyard_client import Client, InvalidArgument, TextDelta, Unavailable
from modelyard_client._service_config import MAX_ATTEMPTS

from tests.client.router_double import DELTAS, RouterDouble


def test_unavailable_before_any_answer_is_retried(double: RouterDouble, address: str) -> None:
    with Client(address) as client, pytest.raises(Unavailable):
        list(client.chat("hi", model="error:UNAVAILABLE"))
    assert len(double.chat_requests) == MAX_ATTEMPTS


def test_other_statuses_are_not_retried(double: RouterDouble, address: str) -> None:
    with Client(address) as client, pytest.raises(InvalidArgument):
        list(client.chat("hi", model="error:INVALID_ARGUMENT"))
    assert len(double.chat_requests) == 1


def test_a_stream_that_has_sent_text_is_never_started_again(double: RouterDouble, address: str) -> None:
    received: list[object] = []
    with Client(address) as client, pytest.raises(Unavailable):
        for event in client.chat("hi", model="error-after:UNAVAILABLE"):
            received.append(event)
    assert received == [TextDelta(DELTAS[0])]
    assert len(double.chat_requests) == 1
