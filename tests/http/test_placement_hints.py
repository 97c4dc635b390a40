"""The HTTP door's TTFT target and admission priority: header and body field, and refusals that name them."""

from __future__ import annotations

import pytest
from modelyard.v1 import inference_pb2 as pb

from core import wire
from core.errors import InvalidArgument
from router.services.http.routing_hints import routing_hints


def test_header_and_body_carry_a_target_and_a_priority() -> None:
    hints = routing_hints({"x-modelyard-ttft-slo-ms": "300", "x-modelyard-priority": "batch"})
    assert wire.ms_of(hints.ttft_slo) == 300
    assert hints.priority == pb.PRIORITY_BATCH
    body = {"modelyard": {"ttft_slo_ms": 250, "priority": "interactive"}}
    hints = routing_hints({"x-modelyard-ttft-slo-ms": "300"}, body)  # the body wins
    assert wire.ms_of(hints.ttft_slo) == 250
    assert hints.priority == pb.PRIORITY_INTERACTIVE


@pytest.mark.parametrize(
    ("headers", "body", "named"),
    [
        ({"x-modelyard-ttft-slo-ms": "soon"}, None, "x-modelyard-ttft-slo-ms"),
        ({"x-modelyard-ttft-slo-ms": "-5"}, None, "x-modelyard-ttft-slo-ms"),
        ({}, {"modelyard": {"ttft_slo_ms": 0}}, "modelyard.ttft_slo_ms"),
        ({"x-modelyard-priority": "urgent"}, None, "x-modelyard-priority"),
        ({}, {"modelyard": {"priority": "vip"}}, "modelyard.priority"),
    ],
)
def test_bad_values_are_refused_naming_the_field(
    headers: dict[str, str], body: dict[str, object] | None, named: str
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        routing_hints(headers, body)
    assert raised.value.message.startswith(named)
