"""Requests built from plain Python values, and errors mapped from gRPC statuses; no server needed."""

from __future__ import annotations

import io
from pathlib import Path

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb
from modelyard_client import Image, InvalidArgument, ModelyardError, NotFound, Unavailable
from modelyard_client._audio import CHUNK_BYTES, config, open_audio, requests
from modelyard_client._errors import from_rpc_error
from modelyard_client._requests import Part, chat_request, messages, sampling

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def test_a_prompt_is_one_user_message_after_the_system_prompt() -> None:
    out = messages("hi", system="be brief")
    assert [m.role for m in out] == [pb.ROLE_SYSTEM, pb.ROLE_USER]
    assert [m.content[0].text for m in out] == ["be brief", "hi"]


def test_pairs_and_dicts_mix() -> None:
    out = messages([("user", "a"), {"role": "assistant", "content": "b", "name": "bot"}, ("user", "c")])
    assert [(m.role, m.content[0].text, m.name) for m in out] == [
        (pb.ROLE_USER, "a", ""),
        (pb.ROLE_ASSISTANT, "b", "bot"),
        (pb.ROLE_USER, "c", ""),
    ]


def test_image_parts_bytes_image_and_openai_dicts(tmp_path: Path) -> None:
    path = tmp_path / "cat.png"
    path.write_bytes(PNG)
    parts: list[Part] = [
        "what is this?",
        PNG,
        Image.from_file(path),
        Image.from_url("https://example.com/a.jpg"),
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "thanks"},
    ]
    (message,) = messages([("user", parts)])
    content = list(message.content)
    assert content[0].text == "what is this?"
    assert (content[1].image.data, content[1].image.mime_type) == (PNG, "image/png")
    assert (content[2].image.data, content[2].image.mime_type) == (PNG, "image/png")
    assert content[3].image.url == "https://example.com/a.jpg"
    assert content[4].image.url == "data:image/png;base64,AAAA"
    assert content[5].text == "thanks"


@pytest.mark.parametrize(
    ("item", "error"),
    [
        (("robot", "x"), ValueError),
        ({"role": "user"}, ValueError),
        (("user", "x", "extra"), TypeError),
        (("user", [b"not an image"]), ValueError),
        (("user", [3]), TypeError),
    ],
)
def test_bad_messages_fail_before_any_call(item: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        messages([item])  # type: ignore[list-item]


def test_image_needs_one_source_and_a_type_with_data() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Image()
    with pytest.raises(ValueError, match="mime_type"):
        Image(data=PNG)


def test_unset_sampling_fields_stay_unset() -> None:
    params = sampling(None, None, None, None, None)
    assert not params.HasField("temperature")
    assert not params.HasField("max_tokens")
    params = sampling(0.0, 0.9, 16, "END", 7)
    assert params.HasField("temperature")
    assert (params.temperature, params.max_tokens, list(params.stop), params.seed) == (0.0, 16, ["END"], 7)


def test_chat_request_carries_routing_hints() -> None:
    request = chat_request(
        "hi",
        model="auto",
        system=None,
        temperature=None,
        top_p=None,
        max_tokens=None,
        stop=None,
        seed=None,
        provider="anthropic",
        strategy="latency",
        max_cost_usd=0.01,
        task="code",
        request_id="r1",
    )
    assert request.request_id == "r1"
    assert (request.routing.provider, request.routing.strategy, request.routing.task) == (
        "anthropic",
        pb.STRATEGY_LATENCY,
        "code",
    )
    assert request.routing.max_cost_usd == pytest.approx(0.01)


def test_audio_is_a_config_then_64_kib_chunks() -> None:
    audio = b"x" * (2 * CHUNK_BYTES + 10)
    cfg = config("whisper-tiny.en", "en", True, None, None)
    with open_audio(audio) as stream:
        sent = list(requests(cfg, stream))
    assert sent[0].config.model == "whisper-tiny.en"
    assert [len(r.audio) for r in sent[1:]] == [CHUNK_BYTES, CHUNK_BYTES, 10]


def test_a_text_mode_file_is_refused() -> None:
    with pytest.raises(TypeError, match="binary"), open_audio(io.StringIO("abc")):  # type: ignore[arg-type]
        pass


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.NOT_FOUND, NotFound),
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgument),
        (grpc.StatusCode.UNAVAILABLE, Unavailable),
        (grpc.StatusCode.DATA_LOSS, ModelyardError),
    ],
)
def test_status_codes_map_to_classes(code: grpc.StatusCode, cls: type[ModelyardError]) -> None:
    error = from_rpc_error(grpc.aio.AioRpcError(code, None, None, details="why"))
    assert type(error) is cls
    assert (error.code, error.message, str(error)) == (code.name, "why", f"{code.name}: why")
