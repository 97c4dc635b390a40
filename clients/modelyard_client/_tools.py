"""Tools, tool calls, reasoning and logprobs as plain values, and the assembly of streamed tool-call fragments.

for event in client.chat("Weather in Paris?", tools=[weather], tool_choice="required"):
    calls.add(event) if isinstance(event, ToolCallDelta) else ...
calls.complete()  # [ToolCall(id=..., name="get_weather", arguments='{"city": "Paris"}')]
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Tool:
    """A function the model may call. `parameters` is the JSON Schema of its arguments object."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] | None = None
    strict: bool = False

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Tool:
        """From OpenAI's shape ({"type": "function", "function": {...}}) or a bare {"name", ...}."""
        function = spec.get("function", spec)
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise ValueError(f"a tool needs a name: {dict(spec)!r}")
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, Mapping):
            raise ValueError(f"tool {function['name']}: parameters must be a JSON Schema object")
        return cls(
            name=function["name"],
            description=str(function.get("description", "")),
            parameters=parameters,
            strict=bool(function.get("strict", False)),
        )


@dataclass(frozen=True)
class ToolCall:
    """A complete call: `arguments` is JSON text as the model wrote it."""

    id: str
    name: str
    arguments: str

    def parsed_arguments(self) -> Any:
        return json.loads(self.arguments) if self.arguments else {}


@dataclass(frozen=True)
class ToolCallDelta:
    """A streamed fragment of tool call `index`: the first has id and name, the rest argument text."""

    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass(frozen=True)
class ReasoningDelta:
    """A piece of the model's reasoning ("thinking"), apart from the answer."""

    text: str
    signature: str = ""  # set on a thinking block's last piece by backends that sign it (Anthropic)


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()  # (token, logprob), likeliest first


@dataclass
class ToolCalls:
    """Collects ToolCallDelta fragments into whole calls, in index order."""

    _parts: dict[int, list[str]] = field(default_factory=dict)  # index -> [id, name, arguments]

    def add(self, delta: ToolCallDelta) -> None:
        part = self._parts.setdefault(delta.index, ["", "", ""])
        part[0] = part[0] or delta.id
        part[1] = part[1] or delta.name
        part[2] += delta.arguments

    def complete(self) -> list[ToolCall]:
        return [ToolCall(*self._parts[index]) for index in sorted(self._parts)]

    def __bool__(self) -> bool:
        return bool(self._parts)
