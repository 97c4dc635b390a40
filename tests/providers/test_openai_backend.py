"""OpenAIBackend (streamed chat on its aiohttp client, the rest on the openai SDK) against a local server speaking
OpenAI's wire format."""

from __future__ import annotations

import asyncio
import email.utils
import struct
import time

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb

from router.backends.base import BackendError
from router.backends.openai_backend import OpenAIBackend
from router.config.settings import ProviderConfig
from tests.providers.conftest import OPENAI_KEY, chat_request, collect, text
from tests.support.fake_http import Fault
from tests.support.fake_openai import FakeOpenAI, embedding_for


async def test_chat_streams_text_then_usage_with_cost(
    openai_backend: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    deltas = []
    async for response in openai_backend.chat(chat_request("gpt-4o-mini"), timeout=5.0):
        deltas.append(response)
    # Chunks that arrive together may come on as one message: the text, in order, is what counts.
    assert "".join(d.delta.text for d in deltas[:-1]) == "Hello from the fake model"
    assert all(d.HasField("delta") for d in deltas[:-1])
    usage = deltas[-1].usage
    assert deltas[-1].HasField("usage")
    assert (usage.prompt_tokens, usage.completion_tokens) == (17, 5)
    assert usage.model == "gpt-4o-mini"
    assert usage.backend == "oa"
    assert usage.request_id == "req-1"
    assert usage.finish_reason == pb.FINISH_REASON_STOP
    assert usage.cost_usd == 0  # backends report tokens; only the router prices them
    sent = fake_openai.requests[-1].json
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}


async def test_sampling_is_mapped(openai_backend: OpenAIBackend, fake_openai: FakeOpenAI) -> None:
    request = chat_request("gpt-4o-mini", temperature=0.7, top_p=0.9, max_tokens=2, stop=["\n"], seed=42)
    reply, usage = await collect(openai_backend.chat(request, timeout=5.0))
    assert reply == "Hello from "
    assert usage is not None
    assert usage.finish_reason == pb.FINISH_REASON_LENGTH
    sent = fake_openai.requests[-1].json
    assert sent["temperature"] == 0.7  # not float32's 0.699999988
    assert sent["top_p"] == 0.9
    assert sent["max_completion_tokens"] == 2
    assert "max_tokens" not in sent
    assert sent["stop"] == ["\n"]
    assert sent["seed"] == 42


async def test_unset_sampling_is_not_sent(openai_backend: OpenAIBackend, fake_openai: FakeOpenAI) -> None:
    await collect(openai_backend.chat(chat_request("gpt-4o-mini"), timeout=5.0))
    sent = fake_openai.requests[-1].json
    for name in ("temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed"):
        assert name not in sent


async def test_compatible_servers_get_max_tokens(fake_openai: FakeOpenAI) -> None:
    backend = OpenAIBackend(
        ProviderConfig(
            name="local", kind="openai_compatible", base_url=fake_openai.base_url, chat_models=["gpt-4o"]
        ),
        max_tokens_param="max_tokens",
    )
    fake_openai.api_key = "no-key-configured"  # a keyless server: the SDK still sends a bearer token
    try:
        await collect(backend.chat(chat_request("gpt-4o", max_tokens=3), timeout=5.0))
    finally:
        await backend.close()
    sent = fake_openai.requests[-1].json
    assert sent["max_tokens"] == 3
    assert "max_completion_tokens" not in sent


async def test_roles_names_and_text_parts(openai_backend: OpenAIBackend, fake_openai: FakeOpenAI) -> None:
    request = chat_request(
        "gpt-4o-mini",
        pb.Message(role=pb.ROLE_SYSTEM, content=[text("Be brief.")]),
        pb.Message(role=pb.ROLE_USER, content=[text("Hi, "), text("there")], name="ana"),
        pb.Message(role=pb.ROLE_ASSISTANT, content=[text("Hello.")]),
        pb.Message(role=pb.ROLE_USER, content=[text("Again")]),
    )
    await collect(openai_backend.chat(request, timeout=5.0))
    assert fake_openai.requests[-1].json["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi, there", "name": "ana"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Again"},
    ]


async def test_images_go_as_image_url_parts(openai_backend: OpenAIBackend, fake_openai: FakeOpenAI) -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    request = chat_request(
        "gpt-4o",
        pb.Message(
            role=pb.ROLE_USER,
            content=[
                text("What is this?"),
                pb.ContentPart(image=pb.Image(data=png, mime_type="image/png")),
                pb.ContentPart(image=pb.Image(url="https://example.com/cat.jpg")),
            ],
        ),
    )
    await collect(openai_backend.chat(request, timeout=5.0))
    content = fake_openai.requests[-1].json["messages"][0]["content"]
    assert content == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgpmYWtl"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]


async def test_images_to_a_text_only_model_are_refused_before_sending(
    openai_backend: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    request = chat_request(
        "gpt-4o-mini",
        pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(image=pb.Image(url="https://x/y.png"))]),
    )
    with pytest.raises(BackendError) as error:
        await collect(openai_backend.chat(request, timeout=5.0))
    assert not error.value.retryable
    assert error.value.status == grpc.StatusCode.INVALID_ARGUMENT
    assert "does not accept images" in error.value.message
    assert fake_openai.requests == []


def _http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


@pytest.mark.parametrize(
    ("fault", "retryable", "status", "retry_after"),
    [
        (Fault(status=429, retry_after="7"), True, grpc.StatusCode.RESOURCE_EXHAUSTED, 7.0),
        (Fault(status=429), True, grpc.StatusCode.RESOURCE_EXHAUSTED, None),
        (Fault(status=500), True, grpc.StatusCode.UNAVAILABLE, None),
        (Fault(status=503), True, grpc.StatusCode.UNAVAILABLE, None),
        (Fault(status=400), False, grpc.StatusCode.INVALID_ARGUMENT, None),
        (Fault(status=422), False, grpc.StatusCode.INVALID_ARGUMENT, None),
        (Fault(status=404, code="model_not_found", message="no such model"), False, grpc.StatusCode.NOT_FOUND, None),
        (Fault(status=404, message="no such route"), False, grpc.StatusCode.INVALID_ARGUMENT, None),
        (Fault(status=403), True, grpc.StatusCode.UNAVAILABLE, None),
        (Fault(cut_after=2), True, grpc.StatusCode.UNAVAILABLE, None),
        (Fault(malformed_after=2), True, grpc.StatusCode.UNAVAILABLE, None),
        (Fault(end_after=2), True, grpc.StatusCode.UNAVAILABLE, None),
        (Fault(error_event_after=2), True, grpc.StatusCode.UNAVAILABLE, None),
    ],
)  # fmt: skip
async def test_faults_map_to_backend_errors(
    openai_backend: OpenAIBackend,
    fake_openai: FakeOpenAI,
    fault: Fault,
    retryable: bool,
    status: grpc.StatusCode,
    retry_after: float | None,
) -> None:
    fake_openai.inject(fault)
    with pytest.raises(BackendError) as error:
        await collect(openai_backend.chat(chat_request("gpt-4o-mini"), timeout=5.0))
    assert error.value.retryable is retryable
    assert error.value.status == status
    if retry_after is None:
        assert error.value.retry_after_s is None
    else:
        assert error.value.retry_after_s == pytest.approx(retry_after, abs=2.0)
    assert OPENAI_KEY not in str(error.value)


async def test_retry_after_as_an_http_date(openai_backend: OpenAIBackend, fake_openai: FakeOpenAI) -> None:
    fake_openai.inject(Fault(status=429, retry_after=_http_date(30)))
    with pytest.raises(BackendError) as error:
        await collect(openai_backend.chat(chat_request("gpt-4o-mini"), timeout=5.0))
    assert error.value.retry_after_s == pytest.approx(30.0, abs=1.5)  # HTTP dates have whole seconds


async def test_a_cut_stream_fails_after_what_was_sent(
    openai_backend: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    fake_openai.inject(Fault(cut_after=3))  # the role chunk, then two words
    received = []
    with pytest.raises(BackendError) as error:
        async for response in openai_backend.chat(chat_request("gpt-4o-mini"), timeout=5.0):
            received.append(response.delta.text)
    assert "".join(received) == "Hello from "  # what arrived before the cut, in one message or two
    assert error.value.retryable


async def test_rejected_key_is_retryable_and_never_quoted(
    openai_backend: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    fake_openai.api_key = "sk-another-key"  # the server now rejects ours, and quotes it back
    with pytest.raises(BackendError) as error:
        await collect(openai_backend.chat(chat_request("gpt-4o-mini"), timeout=5.0))
    assert error.value.retryable
    assert error.value.status == grpc.StatusCode.UNAVAILABLE
    assert error.value.message == "provider oa rejected the router's credentials (HTTP 401)"
    assert OPENAI_KEY not in repr(error.value)


async def test_an_upstream_message_quoting_the_key_is_redacted(
    openai_backend: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    fake_openai.inject(Fault(status=400, message=f"bad request from key {OPENAI_KEY}"))
    with pytest.raises(BackendError) as error:
        await collect(openai_backend.chat(chat_request("gpt-4o-mini"), timeout=5.0))
    assert OPENAI_KEY not in error.value.message
    assert "[redacted]" in error.value.message


async def test_key_is_not_in_the_backends_repr(openai_backend: OpenAIBackend) -> None:
    assert OPENAI_KEY not in repr(openai_backend)
    assert OPENAI_KEY not in repr(openai_backend.config)
    assert OPENAI_KEY not in str(vars(openai_backend).get("config"))


async def test_a_stalled_server_times_out_and_is_hung_up_on(
    openai_backend: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    fake_openai.inject(Fault(stall=True))
    with pytest.raises(BackendError) as error:
        await collect(openai_backend.chat(chat_request("gpt-4o-mini"), timeout=0.3))
    assert error.value.retryable
    assert error.value.status == grpc.StatusCode.DEADLINE_EXCEEDED
    await fake_openai.wait_disconnect()


async def test_closing_the_stream_early_hangs_up_upstream(
    openai_backend: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    fake_openai.inject(Fault(stall_after=2))  # the role chunk and one word, then it would go on forever
    stream = openai_backend.chat(chat_request("gpt-4o-mini"), timeout=5.0)
    first = await anext(stream)
    assert first.delta.text == "Hello "
    await stream.aclose()  # type: ignore[attr-defined]
    await fake_openai.wait_disconnect()
    assert fake_openai.disconnects == 1


async def test_a_server_ignoring_include_usage_gets_estimated_usage(fake_openai: FakeOpenAI) -> None:
    fake_openai.include_usage = False
    backend = OpenAIBackend(
        ProviderConfig(
            name="oa",
            kind="openai",
            api_key=OPENAI_KEY,
            base_url=fake_openai.base_url,
            chat_models=["gpt-4o"],
        )
    )
    try:
        _, usage = await collect(backend.chat(chat_request("gpt-4o"), timeout=5.0))
    finally:
        await backend.close()
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens == 7  # 25 characters at ~4 a token


async def test_nothing_listening_is_retryable_unavailable() -> None:
    async with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        base_url = fake.base_url
    backend = OpenAIBackend(
        ProviderConfig(
            name="oa", kind="openai", api_key=OPENAI_KEY, base_url=base_url, chat_models=["gpt-4o"]
        )
    )
    try:
        with pytest.raises(BackendError) as error:
            await collect(backend.chat(chat_request("gpt-4o"), timeout=5.0))
        assert await backend.health_check() is False
    finally:
        await backend.close()
    assert error.value.retryable
    assert error.value.status == grpc.StatusCode.UNAVAILABLE


async def test_embeddings_in_input_order_with_usage(
    openai_backend: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    request = pb.EmbedRequest(request_id="e1", model="text-embedding-3-small", inputs=["one two", "three"])
    response = await openai_backend.embed(request, timeout=5.0)
    assert [list(e.values) for e in response.embeddings] == [embedding_for("one two"), embedding_for("three")]
    assert response.usage.prompt_tokens == 3
    assert response.usage.backend == "oa"
    assert response.usage.request_id == "e1"
    assert fake_openai.requests[-1].json["input"] == ["one two", "three"]


async def test_embedding_errors_are_mapped(openai_backend: OpenAIBackend, fake_openai: FakeOpenAI) -> None:
    fake_openai.inject(Fault(status=429, retry_after="2"))
    with pytest.raises(BackendError) as error:
        await openai_backend.embed(pb.EmbedRequest(model="text-embedding-3-small", inputs=["x"]), timeout=5.0)
    assert error.value.status == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.value.retry_after_s == 2.0


def _pcm(seconds: float, rate: int = 16000) -> bytes:
    return struct.pack(f"<{int(seconds * rate)}h", *([0] * int(seconds * rate)))


async def test_transcription_of_pcm_uploads_wav_and_maps_segments(
    openai_backend: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    config = pb.TranscribeConfig(
        request_id="t1",
        model="whisper-1",
        language="en",
        prompt="Kenobi",
        encoding=pb.AUDIO_ENCODING_PCM_S16LE,
        sample_rate_hz=16000,
        word_timestamps=True,
    )
    pcm = _pcm(2.0)
    events = [e async for e in openai_backend.transcribe(config, [pcm[:1000], pcm[1000:]], timeout=5.0)]
    sent = fake_openai.requests[-1]
    filename, data, mime_type = sent.files["file"]
    assert (filename, mime_type) == ("audio.wav", "audio/wav")
    assert data.startswith(b"RIFF")
    assert len(data) == len(pcm) + 44
    assert sent.form["response_format"] == "verbose_json"
    assert sent.form["language"] == "en"
    assert sent.form["prompt"] == "Kenobi"
    assert sent.form["timestamp_granularities[]"] == "word,segment"
    assert events[0].info.language == "en"  # the API's "english", as an ISO 639-1 code
    assert events[0].info.duration_seconds == pytest.approx(2.0)
    segments = [e.segment for e in events[1:-1]]
    assert [s.text for s in segments] == ["Hello there.", "General Kenobi."]
    assert [w.word for w in segments[1].words] == ["General", "Kenobi."]
    assert segments[0].start == 0.0
    assert segments[1].end == pytest.approx(2.0)
    usage = events[-1].usage
    assert usage.audio_seconds == pytest.approx(2.0)
    assert usage.request_id == "t1"


async def test_transcription_file_is_named_by_its_container(
    openai_backend: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    config = pb.TranscribeConfig(model="whisper-1")
    events = [e async for e in openai_backend.transcribe(config, [b"ID3\x04\x00fake mp3"], timeout=5.0)]
    filename, _, mime_type = fake_openai.requests[-1].files["file"]
    assert (filename, mime_type) == ("audio.mp3", "audio/mpeg")
    assert "timestamp_granularities[]" not in fake_openai.requests[-1].form
    assert events[-1].usage.audio_seconds == pytest.approx(3.0)  # what the server measured


async def test_gpt4o_transcribe_models_get_plain_json(fake_openai: FakeOpenAI) -> None:
    backend = OpenAIBackend(
        ProviderConfig(
            name="oa",
            kind="openai",
            api_key=OPENAI_KEY,
            base_url=fake_openai.base_url,
            transcribe_models=["gpt-4o-mini-transcribe"],
        ),
    )
    config = pb.TranscribeConfig(
        model="gpt-4o-mini-transcribe", encoding=pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=8000
    )
    try:
        events = [e async for e in backend.transcribe(config, [_pcm(1.5, 8000)], timeout=5.0)]
    finally:
        await backend.close()
    assert fake_openai.requests[-1].form["response_format"] == "json"
    assert events[1].segment.text == "Hello there. General Kenobi."
    assert events[-1].usage.audio_seconds == pytest.approx(1.5)


async def test_transcription_errors_are_mapped(
    openai_backend: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    fake_openai.inject(Fault(status=502))
    with pytest.raises(BackendError) as error:
        async for _ in openai_backend.transcribe(
            pb.TranscribeConfig(model="whisper-1"), [b"RIFF"], timeout=5.0
        ):
            pass
    assert error.value.retryable
    assert error.value.status == grpc.StatusCode.UNAVAILABLE


async def test_health_check(openai_backend: OpenAIBackend, fake_openai: FakeOpenAI) -> None:
    assert await openai_backend.health_check() is True
    assert fake_openai.requests[-1].path == "/v1/models"
    fake_openai.inject(Fault(status=500))
    assert await openai_backend.health_check() is False
    fake_openai.api_key = "rotated"
    assert await openai_backend.health_check() is False


async def test_capacity_and_address(openai_backend: OpenAIBackend, fake_openai: FakeOpenAI) -> None:
    assert openai_backend.available
    openai_backend.in_flight = openai_backend.config.max_concurrency
    assert not openai_backend.available
    openai_backend.in_flight = 0
    assert openai_backend.address == fake_openai.base_url + "/"


async def test_chunks_that_queue_behind_a_slow_reader_come_as_fewer_messages_with_the_same_text(
    openai_backend: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    words = [f"słowo{i}·日本 " for i in range(40)]  # multi-byte characters in every chunk
    fake_openai.reply = "".join(words).rstrip(" ")
    texts: list[str] = []
    async for response in openai_backend.chat(chat_request("gpt-4o-mini"), timeout=5.0):
        if response.HasField("delta"):
            texts.append(response.delta.text)
            await asyncio.sleep(0.2)  # a slow reader: the upstream's chunks queue up meanwhile
    assert "".join(texts) == fake_openai.reply  # every character, in order
    assert len(texts) < len(words)  # what queued up went on together, not one message per chunk
