"""Tool calls and structured output on vLLM: what the model is constrained to, and its text turned into events.

- A forced function (tool_choice names one, or REQUIRED with a single tool): the output is held to that tool's
  parameter schema by vLLM's structured outputs (xgrammar), so the arguments match the schema even on a model
  that knows nothing of tools; the text streams as the call's argument fragments.
- REQUIRED with several tools: the output is held to a JSON array of {name, parameters} calls (the shape vLLM's
  own OpenAI server uses). Which tool a call names is only known once its JSON is complete, so each call is
  sent whole as soon as its object closes (json_array_stream), not when generation ends.
- Otherwise, with tools and a configured tool parser (e.g. hermes), vLLM's streaming parser splits the model's
  own tool-call syntax from its text; without a parser the text is text.
- response_format: the JSON schema (or any JSON object) via structured outputs; the text streams as text.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
from vllm.sampling_params import StructuredOutputsParams
from vllm.tool_parsers.abstract_tool_parser import ToolParser, ToolParserManager

from gpu_worker.engines.base import ChatInput, TextDelta, TokenLogprob, ToolCallFragment
from gpu_worker.engines.json_array_stream import ArrayElements

Event = TextDelta | ToolCallFragment


def template_tools(request: ChatInput) -> list[dict[str, Any]] | None:
    """Tools in the shape chat templates take (OpenAI's); None when the model is offered none."""
    if not request.tools:
        return None
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
        }
        for t in request.tools
    ]


def structured_outputs(request: ChatInput) -> StructuredOutputsParams | None:
    # Compact JSON (no whitespace between tokens) is set engine-wide in vllm_setup.
    if request.forced_tool is not None:
        tool = next(t for t in request.tools if t.name == request.forced_tool)
        return StructuredOutputsParams(json=tool.parameters)
    if request.tool_choice == "required" and request.tools:
        return StructuredOutputsParams(json=_required_calls_schema(request))
    if request.json_schema is not None:
        return StructuredOutputsParams(json=request.json_schema)
    if request.json_object:
        return StructuredOutputsParams(json_object=True)
    return None


def _required_calls_schema(request: ChatInput) -> dict[str, Any]:
    one_of_the_tools = {
        "anyOf": [
            {
                "type": "object",
                "properties": {"name": {"type": "string", "enum": [t.name]}, "parameters": t.parameters},
                "required": ["name", "parameters"],
            }
            for t in request.tools
        ]
    }
    schema: dict[str, Any] = {"type": "array", "minItems": 1, "items": one_of_the_tools}
    if not request.parallel_tool_calls:
        schema["maxItems"] = 1
    return schema


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


class ToolOutput:
    """Turns each generated text delta into events; `finish()` gives what generation's end releases."""

    def __init__(
        self, request: ChatInput, parser: ToolParser | None, parser_request: ChatCompletionRequest | None
    ) -> None:
        self._forced = request.forced_tool
        self._required = (
            request.forced_tool is None and request.tool_choice == "required" and bool(request.tools)
        )
        self._parser = parser if request.tools and not self._forced and not self._required else None
        self._parser_request = parser_request
        self._text = ""
        self._token_ids: list[int] = []
        self._started = False
        self._calls = ArrayElements()  # REQUIRED: the calls completed so far
        self._sent_calls = 0
        self.called = False  # at least one tool call was sent

    def feed(
        self, text: str, token_ids: Sequence[int], logprobs: tuple[TokenLogprob, ...]
    ) -> Iterator[Event]:
        previous_text, previous_ids = self._text, list(self._token_ids)
        self._text += text
        self._token_ids.extend(token_ids)
        if self._forced is not None:
            if not self._started:
                self._started = self.called = True
                yield ToolCallFragment(0, id=_call_id(), name=self._forced)
            if text:
                yield ToolCallFragment(0, arguments=text)
        elif self._required:
            for element in self._calls.feed(text):
                yield from self._call(json.loads(element))
        elif self._parser is not None:
            yield from self._parsed(previous_text, previous_ids, text, token_ids, logprobs)
        elif text or logprobs:
            yield TextDelta(text, logprobs)

    def finish(self) -> Iterator[Event]:
        if not self._required or self._sent_calls:
            return
        try:
            json.loads(self._text)
        except ValueError:  # cut short by max_tokens before any call closed: what there is goes out as text
            if self._text:
                yield TextDelta(self._text)

    def _call(self, call: dict[str, Any]) -> Iterator[Event]:
        index, self._sent_calls = self._sent_calls, self._sent_calls + 1
        self.called = True
        yield ToolCallFragment(index, id=_call_id(), name=call["name"])
        yield ToolCallFragment(index, arguments=json.dumps(call["parameters"]))

    def _parsed(
        self,
        previous_text: str,
        previous_ids: list[int],
        text: str,
        token_ids: Sequence[int],
        logprobs: tuple[TokenLogprob, ...],
    ) -> Iterator[Event]:
        assert self._parser is not None
        assert self._parser_request is not None
        delta = self._parser.extract_tool_calls_streaming(
            previous_text,
            self._text,
            text,
            previous_ids,
            self._token_ids,
            list(token_ids),
            self._parser_request,
        )
        if delta is None:
            return
        if delta.content:
            yield TextDelta(delta.content, logprobs)
        for call in delta.tool_calls:
            self.called = True
            function = call.function
            yield ToolCallFragment(
                call.index,
                id=call.id or "",
                name=(function.name if function else None) or "",
                arguments=(function.arguments if function else None) or "",
            )


def make_tool_parser(
    name: str, tokenizer: Any, request: ChatInput
) -> tuple[ToolParser, ChatCompletionRequest]:
    """A fresh streaming parser (parsers keep per-request state) and the OpenAI-shaped request it reads."""
    parser_request = ChatCompletionRequest.model_validate(
        {"model": "tools", "messages": [], "tools": template_tools(request), "tool_choice": "auto"}
    )
    parser = ToolParserManager.get_tool_parser(name)(tokenizer, list(parser_request.tools or ()))
    adjusted = parser.adjust_request(parser_request)
    assert isinstance(adjusted, ChatCompletionRequest)
    return parser, adjusted


def known_tool_parsers() -> list[str]:
    return sorted(ToolParserManager.list_registered())
