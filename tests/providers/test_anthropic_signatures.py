"""Anthropic's thinking signatures: streamed with the reasoning, kept by callers, and sent back unchanged on a
later turn (the API requires it when a turn with thinking called tools), on gRPC and on the Messages door."""

from __future__ import annotations

import json

from modelyard.v1 import inference_pb2 as pb

from router.backends.anthropic_backend import AnthropicBackend
from router.backends.coalesce import joined
from router.services.http.messages import _Blocks
from router.services.http.messages_request import messages_request
from tests.providers.conftest import chat_request, text
from tests.support.fake_anthropic import FakeAnthropic

SIGNED = "c2lnbmVk"  # what the fake signs every thinking block with


async def test_the_signature_streams_after_the_thinking(anthropic_backend: AnthropicBackend) -> None:
    request = chat_request("claude-haiku-4-5", max_tokens=100)
    request.reasoning.budget_tokens = 2000
    events = [e async for e in anthropic_backend.chat(request, timeout=5.0) if e.HasField("reasoning")]
    assert "".join(e.reasoning.text for e in events) == "The user wants a greeting; I will greet back."
    assert [e.reasoning.signature for e in events if e.reasoning.signature] == [SIGNED]
    assert events[-1].reasoning.signature == SIGNED  # last: the block is complete once signed


async def test_earlier_thinking_goes_back_first_in_its_turn(
    anthropic_backend: AnthropicBackend, fake_anthropic: FakeAnthropic
) -> None:
    turn = pb.Message(
        role=pb.ROLE_ASSISTANT,
        reasoning=[
            pb.ReasoningBlock(text="Weather needs a tool.", signature=SIGNED),
            pb.ReasoningBlock(text="unsigned"),
        ],
        tool_calls=[pb.ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')],
    )
    request = chat_request(
        "claude-haiku-4-5",
        pb.Message(role=pb.ROLE_USER, content=[text("Weather in Paris?")]),
        turn,
        pb.Message(role=pb.ROLE_TOOL, tool_call_id="call_1", content=[text("sunny")]),
    )
    async for _ in anthropic_backend.chat(request, timeout=5.0):
        pass
    sent = fake_anthropic.requests[-1].json["messages"][1]["content"]
    assert sent[0] == {"type": "thinking", "thinking": "Weather needs a tool.", "signature": SIGNED}
    assert [block["type"] for block in sent] == ["thinking", "tool_use"]  # an unsigned block is not sent


def test_a_joined_thinking_block_keeps_its_signature_and_closes() -> None:
    events = [
        pb.ChatResponse(reasoning=pb.ReasoningDelta(text="one ")),
        pb.ChatResponse(reasoning=pb.ReasoningDelta(text="two")),
        pb.ChatResponse(reasoning=pb.ReasoningDelta(signature=SIGNED)),
        pb.ChatResponse(reasoning=pb.ReasoningDelta(text="next block")),
    ]
    out = joined(events)
    assert [(e.reasoning.text, e.reasoning.signature) for e in out] == [
        ("one two", SIGNED),
        ("next block", ""),
    ]


def test_the_messages_door_takes_thinking_back_and_streams_signatures() -> None:
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 64,
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Weather needs a tool.", "signature": SIGNED},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                ],
            },
        ],
    }
    request = messages_request(body)
    assert list(request.messages[1].reasoning) == [
        pb.ReasoningBlock(text="Weather needs a tool.", signature=SIGNED),
        pb.ReasoningBlock(redacted_data="opaque"),
    ]
    blocks = _Blocks(request)
    out = blocks.events(pb.ChatResponse(reasoning=pb.ReasoningDelta(text="Hmm.")))
    out += blocks.events(pb.ChatResponse(reasoning=pb.ReasoningDelta(signature=SIGNED)))
    deltas = [
        json.loads(line[6:])["delta"] for line in out.decode().splitlines() if '"content_block_delta"' in line
    ]
    assert deltas == [
        {"type": "thinking_delta", "thinking": "Hmm."},
        {"type": "signature_delta", "signature": SIGNED},
    ]
