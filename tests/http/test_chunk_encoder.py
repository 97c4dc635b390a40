"""A streamed text delta's frame, built around the text once per answer, is the same JSON the generic
encoding of that chunk makes, whatever the text, model or request id hold."""

from __future__ import annotations

import json

import pytest
from modelyard.v1 import inference_pb2 as pb

from router.services.http.chat_response import ChunkEncoder

TEXTS = ["plain", "", '""', 'say "hi"', "back\\slash", "line\nbreak\ttab", "日本語 🙂", "\u2028\x00"]


def _frames(data: bytes) -> list[dict[str, object]]:
    return [json.loads(line[6:]) for line in data.split(b"\n\n") if line.startswith(b"data: ")]


@pytest.mark.parametrize("model", ["gpt-4o-mini", 'we"ird""model'])
def test_text_frames_decode_to_the_chunk_the_generic_encoding_makes(model: str) -> None:
    request = pb.ChatRequest(model=model, request_id='r-""1')
    encoder = ChunkEncoder(request, include_usage=False)
    first = _frames(encoder.event(pb.ChatResponse(delta=pb.ChatDelta(text="x"))))
    assert first[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}  # type: ignore[index]
    for text in TEXTS:
        (frame,) = _frames(encoder.event(pb.ChatResponse(delta=pb.ChatDelta(text=text))))
        assert frame == {
            "id": 'chatcmpl-r-""1',
            "object": "chat.completion.chunk",
            "created": first[0]["created"],
            "model": model,
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None, "logprobs": None}],
        }
