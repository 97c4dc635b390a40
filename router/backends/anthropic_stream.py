"""Anthropic stream content blocks as our events: text, thinking as reasoning, tool_use blocks as tool calls.

Tool calls are numbered among tool_use blocks only (the API's block index counts text and thinking blocks
too). The forced structured-output tool's input is the answer itself, so it is relayed as text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from modelyard.v1 import inference_pb2 as pb


class BlockEvents:
    def __init__(self, response_tool: str | None) -> None:
        self._response_tool = response_tool
        self._calls: dict[int, int] = {}  # block index -> tool call index
        self._answer_blocks: set[int] = set()  # blocks of the structured-output tool
        self._sent_arguments: set[int] = set()

    def start(self, index: int, block: Any) -> Iterator[pb.ChatResponse]:
        if block.type != "tool_use":
            return
        if block.name == self._response_tool:
            self._answer_blocks.add(index)
            return
        call = self._calls[index] = len(self._calls)
        yield pb.ChatResponse(tool_call=pb.ToolCallDelta(index=call, id=block.id, name=block.name))

    def delta(self, index: int, delta: Any) -> Iterator[pb.ChatResponse]:
        if delta.type == "text_delta" and delta.text:
            yield pb.ChatResponse(delta=pb.ChatDelta(text=delta.text))
        elif delta.type == "thinking_delta" and delta.thinking:
            yield pb.ChatResponse(reasoning=pb.ReasoningDelta(text=delta.thinking))
        elif delta.type == "signature_delta" and delta.signature:
            yield pb.ChatResponse(reasoning=pb.ReasoningDelta(signature=delta.signature))
        elif delta.type == "input_json_delta" and delta.partial_json:
            self._sent_arguments.add(index)
            if index in self._answer_blocks:
                yield pb.ChatResponse(delta=pb.ChatDelta(text=delta.partial_json))
            elif index in self._calls:
                call = self._calls[index]
                yield pb.ChatResponse(tool_call=pb.ToolCallDelta(index=call, arguments=delta.partial_json))

    def stop(self, index: int) -> Iterator[pb.ChatResponse]:
        # A call without arguments streams no input_json_delta; its arguments are still a JSON object.
        if index in self._sent_arguments:
            return
        if index in self._answer_blocks:
            yield pb.ChatResponse(delta=pb.ChatDelta(text="{}"))
        elif index in self._calls:
            yield pb.ChatResponse(tool_call=pb.ToolCallDelta(index=self._calls[index], arguments="{}"))

    @property
    def answered_in_json(self) -> bool:
        """The forced structured-output tool ran: its tool_use stop is the answer's natural end."""
        return bool(self._answer_blocks)
