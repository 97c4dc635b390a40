"""The raw SSE reader of OpenAI-style streams: events split across reads, CRLF, multi-line data, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from router.backends import openai_sse
from router.backends.openai_sse import StreamErrorEvent, sse_batches


async def _body(pieces: Sequence[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def _objects(pieces: Sequence[bytes]) -> list[Any]:
    return [o async for batch in sse_batches(_body(pieces)) for o in batch]


async def test_events_split_anywhere_come_out_whole_and_in_order() -> None:
    text = 'data: {"n": 1, "t": "日本"}\n\n: a comment\n\ndata: {"n": 2}\r\n\r\ndata: [DONE]\n\ndata: {"n": 3}\n\n'
    raw = text.encode()
    # Cut inside a multi-byte character and inside a line ending.
    in_char, in_crlf = raw.index("日".encode()) + 1, raw.index(b"\r\n") + 1
    pieces = [raw[:in_char], raw[in_char:in_crlf], raw[in_crlf:]]
    assert await _objects(pieces) == [{"n": 1, "t": "日本"}, {"n": 2}]  # nothing after [DONE]


async def test_multi_line_data_and_a_last_event_without_its_blank_line() -> None:
    raw = b'event: message\ndata: {"a":\ndata: 1}\n\ndata: {"b": 2}'
    assert await _objects([raw]) == [{"a": 1}, {"b": 2}]


async def test_an_error_object_raises_a_stream_error_event() -> None:
    raw = b'data: {"n": 1}\n\ndata: {"error": {"message": "overloaded"}}\n\n'
    seen: list[Any] = []
    with pytest.raises(StreamErrorEvent) as error:
        async for batch in sse_batches(_body([raw])):
            seen.extend(batch)
    assert seen == [{"n": 1}]
    assert error.value.message == "overloaded"


async def test_data_that_is_not_json_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="malformed"):
        await _objects([b"data: {not json\n\n"])


async def test_events_read_together_come_as_one_batch() -> None:
    pieces = [b'data: {"n": 1}\n\ndata: {"n": 2}\n\ndata: {"n"', b": 3}\n\n", b"data: [DONE]\n\n"]
    batches = [batch async for batch in sse_batches(_body(pieces))]
    assert batches == [[{"n": 1}, {"n": 2}], [{"n": 3}]]


async def test_events_before_an_error_in_the_same_read_are_delivered_first() -> None:
    raw = b'data: {"n": 1}\n\ndata: {"error": {"message": "overloaded"}}\n\n'
    seen: list[Any] = []
    with pytest.raises(StreamErrorEvent):
        async for batch in sse_batches(_body([raw])):
            seen.append(batch)
    assert seen == [[{"n": 1}]]


async def test_a_line_or_an_event_that_never_ends_is_refused_not_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(openai_sse, "MAX_LINE_BYTES", 64)
    with pytest.raises(ValueError, match="longer than 64 bytes"):
        await _objects([b"data: " + b"x" * 40] * 4)  # no newline, ever
    with pytest.raises(ValueError, match="longer than 64 bytes"):
        await _objects([b"data: yyyyyyyyyy\n"] * 10)  # lines, but no blank line to end the event
    assert await _objects([b'data: {"n":', b" 1}\n", b"\n"]) == [{"n": 1}]  # a line cut in pieces is whole
