"""How `modelyard chat` shows a streamed answer: JSON lines, or text for a person.

JSON lines: {"reasoning": ...} and {"delta": ...} as they arrive (a delta carries "logprobs" when asked for),
each tool call once, whole, as {"tool_call": {"id", "name", "arguments": "<json text>"}}, then {"usage": ...}.
Readably: the answer on stdout; reasoning, logprobs and the usage line on stderr; each tool call as
`-> name(arguments)  [id]` on stdout.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

from modelyard_client import ChatEvent, ReasoningDelta, TextDelta, ToolCall, ToolCallDelta, ToolCalls, Usage
from modelyard_client.cli._common import as_dict, eprint, print_json, usage_line


class ChatPrinter:
    def __init__(self, as_json: bool) -> None:
        self._json = as_json
        self._calls = ToolCalls()
        self._line_open = False  # stdout has text without its final newline
        self._in_reasoning = False

    def show(self, event: ChatEvent) -> None:
        if isinstance(event, ToolCallDelta):
            self._calls.add(event)  # printed whole, once the stream ends
        elif isinstance(event, ReasoningDelta):
            self._reasoning(event)
        elif isinstance(event, TextDelta):
            self._text(event)
        else:
            self._usage(event)

    def finish(self) -> None:
        """After the last event: tool calls not yet shown (a stream that ended without usage), the newline."""
        self._flush_calls()
        self._end_line()

    def _reasoning(self, event: ReasoningDelta) -> None:
        if self._json:
            print_json({"reasoning": event.text})
            return
        if not self._in_reasoning:
            sys.stderr.write("thinking: ")
            self._in_reasoning = True
        sys.stderr.write(event.text)
        sys.stderr.flush()

    def _text(self, event: TextDelta) -> None:
        if self._json:
            line: dict[str, object] = {"delta": event.text}
            if event.logprobs:
                line["logprobs"] = [asdict(lp) for lp in event.logprobs]
            print_json(line)
            return
        self._end_reasoning()
        if event.text:
            sys.stdout.write(event.text)
            sys.stdout.flush()
            self._line_open = not event.text.endswith("\n")
        for lp in event.logprobs:
            alternatives = ", ".join(f"{token!r} {value:.3f}" for token, value in lp.top)
            eprint(f"  {lp.token!r} {lp.logprob:.3f}" + (f"  ({alternatives})" if alternatives else ""))

    def _usage(self, usage: Usage) -> None:
        self._flush_calls()
        if self._json:
            print_json({"usage": as_dict(usage)})
            return
        self._end_line()
        eprint(usage_line(usage))

    def _flush_calls(self) -> None:
        calls, self._calls = self._calls.complete(), ToolCalls()
        for call in calls:
            self._tool_call(call)

    def _tool_call(self, call: ToolCall) -> None:
        if self._json:
            print_json({"tool_call": {"id": call.id, "name": call.name, "arguments": call.arguments}})
            return
        self._end_line()
        try:  # compact, on one line, when it is the JSON it should be
            arguments = json.dumps(call.parsed_arguments(), ensure_ascii=False)
        except ValueError:
            arguments = call.arguments
        print(f"-> {call.name}({arguments})  [{call.id}]", flush=True)

    def _end_reasoning(self) -> None:
        if self._in_reasoning:
            sys.stderr.write("\n")
            self._in_reasoning = False

    def _end_line(self) -> None:
        self._end_reasoning()
        if self._line_open:
            print(flush=True)
            self._line_open = False
