"""Events that arrived together, joined: same text, same order, fewer messages; tool calls untouched."""

from __future__ import annotations

from modelyard.v1 import inference_pb2 as pb

from router.backends.coalesce import joined


def _text(text: str, *tokens: str) -> pb.ChatResponse:
    logprobs = [pb.TokenLogprob(token=t, logprob=-1.0) for t in tokens]
    return pb.ChatResponse(delta=pb.ChatDelta(text=text, logprobs=logprobs))


def _reasoning(text: str) -> pb.ChatResponse:
    return pb.ChatResponse(reasoning=pb.ReasoningDelta(text=text))


def _tool(index: int, arguments: str) -> pb.ChatResponse:
    return pb.ChatResponse(tool_call=pb.ToolCallDelta(index=index, arguments=arguments))


def test_adjacent_texts_join_with_their_logprobs_in_order() -> None:
    out = joined([_text("日本", "日", "本"), _text("語 ", "語 "), _text("é", "é")])
    assert [e.delta.text for e in out] == ["日本語 é"]
    assert [lp.token for lp in out[0].delta.logprobs] == ["日", "本", "語 ", "é"]


def test_kinds_never_mix_and_never_reorder() -> None:
    events = [
        _reasoning("think "),
        _reasoning("more"),
        _text("a"),
        _text("b"),
        _tool(0, '{"x":'),
        _tool(0, "1}"),
        _text("c"),
    ]
    out = joined(events)
    kinds = [e.WhichOneof("event") for e in out]
    assert kinds == ["reasoning", "delta", "tool_call", "tool_call", "delta"]
    assert out[0].reasoning.text == "think more"
    assert [out[1].delta.text, out[4].delta.text] == ["ab", "c"]
    assert [e.tool_call.arguments for e in out[2:4]] == ['{"x":', "1}"]  # fragments pass as they are


def test_one_or_no_event_is_handed_back_as_is() -> None:
    assert joined([]) == []
    single = [_text("x")]
    assert joined(single) is single
