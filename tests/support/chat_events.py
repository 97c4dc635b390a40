"""Assemble a Chat stream's events the way a client does: text, reasoning, whole tool calls, usage."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from modelyard.v1 import inference_pb2 as pb

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}


def weather_tool(name: str = "get_weather") -> pb.Tool:
    return pb.Tool(name=name, description="Current weather in a city", parameters=json.dumps(WEATHER_SCHEMA))


@dataclass
class Call:
    id: str = ""
    name: str = ""
    arguments: str = ""

    def parsed(self) -> Any:
        return json.loads(self.arguments)


@dataclass
class Answer:
    text: str = ""
    reasoning: str = ""
    calls: dict[int, Call] = field(default_factory=dict)
    logprobs: list[pb.TokenLogprob] = field(default_factory=list)
    usage: pb.Usage | None = None
    order: list[str] = field(default_factory=list)  # event kinds in arrival order

    def add(self, response: pb.ChatResponse) -> None:
        kind = response.WhichOneof("event")
        assert kind is not None
        self.order.append(kind)
        if kind == "delta":
            self.text += response.delta.text
            self.logprobs.extend(response.delta.logprobs)
        elif kind == "reasoning":
            self.reasoning += response.reasoning.text
        elif kind == "tool_call":
            fragment = response.tool_call
            call = self.calls.setdefault(fragment.index, Call())
            call.id = call.id or fragment.id
            call.name = call.name or fragment.name
            call.arguments += fragment.arguments
        else:
            self.usage = response.usage


def assemble(responses: Iterable[pb.ChatResponse]) -> Answer:
    answer = Answer()
    for response in responses:
        answer.add(response)
    return answer


async def collect_answer(stream: AsyncIterator[pb.ChatResponse]) -> Answer:
    answer = Answer()
    async for response in stream:
        answer.add(response)
    return answer
