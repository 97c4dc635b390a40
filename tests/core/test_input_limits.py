"""Input caps (core.input_limits): each refusal names the field, and a request far over a cap costs nothing."""

from __future__ import annotations

import pytest
from modelyard.v1 import inference_pb2 as pb

from core.errors import InvalidArgument
from core.input_limits import DEFAULT_INPUT_LIMITS, InputLimits
from core.validation import validate_chat, validate_embed, validate_transcribe_config


def chat(*parts: pb.ContentPart, count: int = 1) -> pb.ChatRequest:
    message = pb.Message(role=pb.ROLE_USER, content=list(parts) or [pb.ContentPart(text="hi")])
    return pb.ChatRequest(model="m", messages=[message] * count)


def image_url(url: str) -> pb.ContentPart:
    return pb.ContentPart(image=pb.Image(url=url))


def refused(request: pb.ChatRequest, limits: InputLimits = DEFAULT_INPUT_LIMITS) -> str:
    with pytest.raises(InvalidArgument) as error:
        validate_chat(request, limits)
    return error.value.message


def test_counts_sizes_and_stop_strings_are_capped() -> None:
    assert (
        refused(chat(count=3), InputLimits(max_messages=2)) == "messages: 3 messages; at most 2 per request"
    )
    parts = chat(pb.ContentPart(text="a"), pb.ContentPart(text="b"), count=2)
    assert (
        refused(parts, InputLimits(max_content_parts=3))
        == "messages: 4 content parts in all; at most 3 per request"
    )
    assert refused(chat(pb.ContentPart(text="x" * 200)), InputLimits(max_text_bytes=100)).startswith(
        "messages: about 2"
    )
    image = pb.ContentPart(image=pb.Image(data=b"\0" * 200, mime_type="image/png"))
    assert (
        refused(chat(image), InputLimits(max_image_bytes=100)) == "messages: 200 bytes of images; at most 100"
    )
    validate_chat(chat(image), InputLimits(max_image_bytes=200, max_text_bytes=100))  # images are not text
    stops = chat()
    stops.sampling.stop.extend(["a", "b", "c"])
    assert refused(stops, InputLimits(max_stop_strings=2)) == "sampling.stop: 3 stop strings; at most 2"
    long_stop = chat()
    long_stop.sampling.stop.append("é" * 200)
    assert refused(long_stop) == "sampling.stop[0]: longer than 256 bytes"


def test_request_ids_are_short_printable_ascii() -> None:
    for request_id, message in (
        ("x" * 129, "request_id: longer than 128 characters"),
        ("forged\nINFO admin logged in", "request_id: printable ASCII without spaces only"),
        ("a b", "request_id: printable ASCII without spaces only"),
    ):
        request = chat()
        request.request_id = request_id
        assert refused(request) == message
    with pytest.raises(InvalidArgument, match=r"config\.request_id: longer than 128"):
        validate_transcribe_config(pb.TranscribeConfig(model="w", request_id="x" * 200))


def test_image_urls_are_https_or_data_by_default() -> None:
    validate_chat(chat(image_url("https://images.example.com/cat.png")))
    validate_chat(chat(image_url("data:image/png;base64,iVBORw0KGgo=")))
    for url, reason in (
        ("http://169.254.169.254/latest/meta-data", "scheme 'http' is not allowed; allowed: https, data"),
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
        ("gopher://x", "scheme 'gopher' is not allowed"),
        ("data:text/html,<script>", "a data: URL must hold an image"),
        ("https:///cat.png", "no host"),
    ):
        assert reason in refused(chat(image_url(url)))
    assert refused(chat(image_url("ftp://x/y"))).startswith("messages[0].content[0].image.url: ")


def test_image_url_hosts_can_be_allow_listed() -> None:
    limits = InputLimits(image_url_hosts=("cdn.example.com", "*.images.example.org"))
    validate_chat(chat(image_url("https://cdn.example.com/a.png")), limits)
    validate_chat(chat(image_url("https://eu.images.example.org/a.png")), limits)
    validate_chat(chat(image_url("data:image/png;base64,AAAA")), limits)  # inline: no host to reach
    assert "host 'evil.example' is not in this router's image_url_hosts" in refused(
        chat(image_url("https://evil.example/a.png")), limits
    )


def test_max_tokens_and_embed_caps() -> None:
    request = chat()
    request.sampling.max_tokens = 10**9
    assert refused(request) == "sampling.max_tokens: 1000000000 is above this router's limit of 32768"
    with pytest.raises(InvalidArgument, match=r"inputs: 3 inputs; at most 2 per request"):
        validate_embed(pb.EmbedRequest(model="e", inputs=["a", "b", "c"]), InputLimits(max_embed_inputs=2))
    with pytest.raises(InvalidArgument, match=r"inputs: \d+ bytes in all; at most 100"):
        validate_embed(pb.EmbedRequest(model="e", inputs=["x" * 200]), InputLimits(max_text_bytes=100))


def test_caps_must_be_sane() -> None:
    with pytest.raises(ValueError, match=r"input\.max_messages: must be at least 1"):
        InputLimits(max_messages=0)
    with pytest.raises(ValueError, match="default_max_tokens: must not be above"):
        InputLimits(max_tokens=10, default_max_tokens=20)
