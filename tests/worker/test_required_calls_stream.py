"""tool_choice REQUIRED with several tools on a worker: each call goes out as soon as its JSON object closes."""

from __future__ import annotations

import json

from gpu_worker.engines.base import ChatInput, ChatMessage, TextDelta, ToolCallFragment, ToolSpec
from gpu_worker.engines.json_array_stream import ArrayElements
from gpu_worker.engines.vllm_tools import ToolOutput

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}
CALLS = [
    {"name": "get_weather", "parameters": {"city": 'Paris "the city of light" {[\\]}'}},
    {"name": "get_time", "parameters": {"city": "Tokyo"}},
]


def test_elements_complete_as_their_closing_brace_arrives() -> None:
    text = json.dumps(CALLS)
    elements = ArrayElements()
    seen: list[tuple[int, str]] = []
    for at, char in enumerate(text):
        seen += [(at, element) for element in elements.feed(char)]
    first_end = text.index("}},") + 1
    assert [json.loads(element) for _, element in seen] == CALLS
    assert seen[0][0] == first_end  # the first call is out before the second one begins


def test_required_calls_stream_one_by_one() -> None:
    request = ChatInput(
        request_id="r",
        messages=(ChatMessage("user", "Weather and time?"),),
        tools=(ToolSpec("get_weather", "", SCHEMA), ToolSpec("get_time", "", SCHEMA)),
        tool_choice="required",
    )
    output = ToolOutput(request, None, None)
    text = json.dumps(CALLS)
    cut = text.index("}},") + 3  # after the first call and its comma
    first = list(output.feed(text[:cut], [], ()))
    assert [(e.index, e.name) for e in first if isinstance(e, ToolCallFragment) and e.name] == [
        (0, "get_weather")
    ]
    assert (
        json.loads("".join(e.arguments for e in first if isinstance(e, ToolCallFragment)))
        == CALLS[0]["parameters"]
    )
    rest = list(output.feed(text[cut:], [], ())) + list(output.finish())
    assert [(e.index, e.name) for e in rest if isinstance(e, ToolCallFragment) and e.name] == [
        (1, "get_time")
    ]
    assert not any(isinstance(e, TextDelta) for e in first + rest)
    assert output.called


def test_an_answer_cut_before_any_call_closed_goes_out_as_text() -> None:
    request = ChatInput(
        request_id="r",
        messages=(ChatMessage("user", "?"),),
        tools=(ToolSpec("get_weather", "", SCHEMA), ToolSpec("get_time", "", SCHEMA)),
        tool_choice="required",
    )
    output = ToolOutput(request, None, None)
    events = list(output.feed('[{"name": "get_wea', [], ())) + list(output.finish())
    assert events == [TextDelta('[{"name": "get_wea')]
    assert not output.called
