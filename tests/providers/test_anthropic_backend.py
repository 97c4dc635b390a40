"""AnthropicBackend through the real anthropic SDK against a local server speaking Anthropic's wire format."""

from __future__ import annotations

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb

from router.backends.anthropic_backend import AnthropicBackend
from router.backends.base import BackendError
from router.config.settings import ProviderConfig
from tests.providers.conftest import ANTHROPIC_KEY, chat_request, collect, text
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.fake_http import Fault


async def test_chat_streams_text_then_usage_with_tokens_the_router_prices(
    anthropic_backend: AnthropicBackend, fake_anthropic: FakeAnthropic
) -> None:
    responses = [r async for r in anthropic_backend.chat(chat_request("claude-haiku-4-5"), timeout=5.0)]
    assert [r.delta.text for r in responses[:-1]] == ["Hello ", "from ", "the ", "fake ", "Claude"]
    usage = responses[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (23, 5)
    assert usage.model == "claude-haiku-4-5"
    assert usage.backend == "claude"
    assert usage.finish_reason == pb.FINISH_REASON_STOP
    assert usage.cost_usd == 0  # backends report tokens; only the router prices them
    sent = fake_anthropic.requests[-1]
    assert ANTHROPIC_KEY in (sent.headers.get("x-api-key"), sent.headers.get("Authorization", "")[7:])
    assert sent.json["stream"] is True


async def test_system_goes_to_its_own_parameter(
    anthropic_backend: AnthropicBackend, fake_anthropic: FakeAnthropic
) -> None:
    request = chat_request(
        "claude-haiku-4-5",
        pb.Message(role=pb.ROLE_SYSTEM, content=[text("Be brief.")]),
        pb.Message(role=pb.ROLE_USER, content=[text("Hi")]),
        pb.Message(role=pb.ROLE_ASSISTANT, content=[text("Hello.")]),
        pb.Message(role=pb.ROLE_SYSTEM, content=[text("Use English.")]),
        pb.Message(role=pb.ROLE_USER, content=[text("Again")]),
    )
    await collect(anthropic_backend.chat(request, timeout=5.0))
    sent = fake_anthropic.requests[-1].json
    assert sent["system"] == "Be brief.\n\nUse English."
    assert sent["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Again"},
    ]


async def test_max_tokens_defaults_from_config_and_sampling_is_mapped(
    anthropic_backend: AnthropicBackend, fake_anthropic: FakeAnthropic
) -> None:
    await collect(anthropic_backend.chat(chat_request("claude-haiku-4-5"), timeout=5.0))
    sent = fake_anthropic.requests[-1].json
    assert sent["max_tokens"] == 333
    assert "system" not in sent
    for name in ("temperature", "top_p", "stop_sequences"):
        assert name not in sent
    request = chat_request("claude-haiku-4-5", temperature=0.3, top_p=0.8, max_tokens=2, stop=["END"], seed=7)
    reply, usage = await collect(anthropic_backend.chat(request, timeout=5.0))
    sent = fake_anthropic.requests[-1].json
    assert (sent["max_tokens"], sent["temperature"], sent["top_p"]) == (2, 0.3, 0.8)
    assert sent["stop_sequences"] == ["END"]
    assert "seed" not in sent
    assert reply == "Hello from "
    assert usage is not None
    assert usage.finish_reason == pb.FINISH_REASON_LENGTH


async def test_images_go_as_base64_or_url_sources(
    anthropic_backend: AnthropicBackend, fake_anthropic: FakeAnthropic
) -> None:
    request = chat_request(
        "claude-sonnet-4-6",
        pb.Message(
            role=pb.ROLE_USER,
            content=[
                text("Compare"),
                pb.ContentPart(image=pb.Image(data=b"\xff\xd8\xffjpeg", mime_type="image/jpeg")),
                pb.ContentPart(image=pb.Image(url="data:image/png;base64,iVBORw0K")),
                pb.ContentPart(image=pb.Image(url="https://example.com/a.webp")),
            ],
        ),
    )
    await collect(anthropic_backend.chat(request, timeout=5.0))
    assert fake_anthropic.requests[-1].json["messages"][0]["content"] == [
        {"type": "text", "text": "Compare"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/anBlZw=="}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.webp"}},
    ]


@pytest.mark.parametrize(
    ("model", "image", "expected"),
    [
        ("claude-haiku-4-5", pb.Image(url="https://x/y.png"), "does not accept images"),
        ("claude-sonnet-4-6", pb.Image(data=b"BM", mime_type="image/bmp"), "image type 'image/bmp'"),
    ],
)
async def test_unsendable_images_are_refused_before_sending(
    anthropic_backend: AnthropicBackend,
    fake_anthropic: FakeAnthropic,
    model: str,
    image: pb.Image,
    expected: str,
) -> None:
    request = chat_request(model, pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(image=image)]))
    with pytest.raises(BackendError) as error:
        await collect(anthropic_backend.chat(request, timeout=5.0))
    assert error.value.status == grpc.StatusCode.INVALID_ARGUMENT
    assert not error.value.retryable
    assert expected in error.value.message
    assert fake_anthropic.requests == []


@pytest.mark.parametrize(
    ("fault", "retryable", "status", "retry_after"),
    [
        (Fault(status=429, retry_after="11"), True, grpc.StatusCode.RESOURCE_EXHAUSTED, 11.0),
        (Fault(status=529), True, grpc.StatusCode.UNAVAILABLE, None),
        (Fault(status=500), True, grpc.StatusCode.UNAVAILABLE, None),
        (Fault(status=400), False, grpc.StatusCode.INVALID_ARGUMENT, None),
        (Fault(status=413), False, grpc.StatusCode.INVALID_ARGUMENT, None),
        (Fault(status=404, message="model: claude-nope"), False, grpc.StatusCode.NOT_FOUND, None),
        (Fault(status=403), True, grpc.StatusCode.UNAVAILABLE, None),
        (Fault(status=402, code="billing_error"), True, grpc.StatusCode.UNAVAILABLE, None),
        (Fault(cut_after=4), True, grpc.StatusCode.UNAVAILABLE, None),
        (Fault(malformed_after=4), True, grpc.StatusCode.UNAVAILABLE, None),
        (Fault(end_after=4), True, grpc.StatusCode.UNAVAILABLE, None),
        (Fault(error_event_after=4), True, grpc.StatusCode.UNAVAILABLE, None),
        (Fault(error_event_after=4, code="rate_limit_error"), True, grpc.StatusCode.RESOURCE_EXHAUSTED, None),
        (Fault(error_event_after=4, code="invalid_request_error"), False, grpc.StatusCode.INVALID_ARGUMENT, None),
    ],
)  # fmt: skip
async def test_faults_map_to_backend_errors(
    anthropic_backend: AnthropicBackend,
    fake_anthropic: FakeAnthropic,
    fault: Fault,
    retryable: bool,
    status: grpc.StatusCode,
    retry_after: float | None,
) -> None:
    fake_anthropic.inject(fault)
    with pytest.raises(BackendError) as error:
        await collect(anthropic_backend.chat(chat_request("claude-haiku-4-5"), timeout=5.0))
    assert error.value.retryable is retryable
    assert error.value.status == status
    assert error.value.retry_after_s == retry_after
    assert ANTHROPIC_KEY not in str(error.value)


async def test_a_cut_stream_fails_after_what_was_sent(
    anthropic_backend: AnthropicBackend, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.inject(Fault(cut_after=5))  # message_start, block start, ping, two words
    received = []
    with pytest.raises(BackendError) as error:
        async for response in anthropic_backend.chat(chat_request("claude-haiku-4-5"), timeout=5.0):
            received.append(response.delta.text)
    assert received == ["Hello ", "from "]
    assert error.value.retryable


async def test_rejected_key_is_retryable_and_never_quoted(
    anthropic_backend: AnthropicBackend, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.api_key = "sk-ant-other"
    with pytest.raises(BackendError) as error:
        await collect(anthropic_backend.chat(chat_request("claude-haiku-4-5"), timeout=5.0))
    assert error.value.retryable
    assert error.value.status == grpc.StatusCode.UNAVAILABLE
    assert error.value.message == "provider claude rejected the router's credentials (HTTP 401)"
    assert ANTHROPIC_KEY not in repr(anthropic_backend)


async def test_a_stalled_server_times_out_and_is_hung_up_on(
    anthropic_backend: AnthropicBackend, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.inject(Fault(stall=True))
    with pytest.raises(BackendError) as error:
        await collect(anthropic_backend.chat(chat_request("claude-haiku-4-5"), timeout=0.3))
    assert error.value.retryable
    assert error.value.status == grpc.StatusCode.DEADLINE_EXCEEDED
    await fake_anthropic.wait_disconnect()


async def test_closing_the_stream_early_hangs_up_upstream(
    anthropic_backend: AnthropicBackend, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.inject(Fault(stall_after=4))  # message_start, block start, ping, one word; then forever
    stream = anthropic_backend.chat(chat_request("claude-haiku-4-5"), timeout=5.0)
    first = await anext(stream)
    assert first.delta.text == "Hello "
    await stream.aclose()  # type: ignore[attr-defined]
    await fake_anthropic.wait_disconnect()
    assert fake_anthropic.disconnects == 1


async def test_embed_and_transcribe_are_not_offered(anthropic_backend: AnthropicBackend) -> None:
    assert not anthropic_backend.serves("claude-haiku-4-5", pb.CAPABILITY_EMBED)
    assert not anthropic_backend.serves("claude-haiku-4-5", pb.CAPABILITY_TRANSCRIBE)
    assert anthropic_backend.serves("claude-haiku-4-5", pb.CAPABILITY_CHAT)
    with pytest.raises(BackendError) as error:
        await anthropic_backend.embed(pb.EmbedRequest(model="claude-haiku-4-5", inputs=["x"]), timeout=1.0)
    assert (error.value.retryable, error.value.status) == (False, grpc.StatusCode.INVALID_ARGUMENT)
    with pytest.raises(BackendError) as error:
        async for _ in anthropic_backend.transcribe(pb.TranscribeConfig(model="x"), [b""], timeout=1.0):
            pass
    assert (error.value.retryable, error.value.status) == (False, grpc.StatusCode.INVALID_ARGUMENT)


async def test_health_check(anthropic_backend: AnthropicBackend, fake_anthropic: FakeAnthropic) -> None:
    assert await anthropic_backend.health_check() is True
    assert fake_anthropic.requests[-1].path == "/v1/models"
    fake_anthropic.inject(Fault(status=529))
    assert await anthropic_backend.health_check() is False
    fake_anthropic.api_key = "rotated"
    assert await anthropic_backend.health_check() is False


async def test_nothing_listening_is_retryable_unavailable() -> None:
    async with FakeAnthropic(api_key=ANTHROPIC_KEY) as fake:
        base_url = fake.base_url
    backend = AnthropicBackend(
        ProviderConfig(
            name="claude",
            kind="anthropic",
            api_key=ANTHROPIC_KEY,
            base_url=base_url,
            chat_models=["claude-haiku-4-5"],
        )
    )
    try:
        with pytest.raises(BackendError) as error:
            await collect(backend.chat(chat_request("claude-haiku-4-5"), timeout=5.0))
        assert await backend.health_check() is False
    finally:
        await backend.close()
    assert (error.value.retryable, error.value.status) == (True, grpc.StatusCode.UNAVAILABLE)
