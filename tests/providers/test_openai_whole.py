"""OpenAIBackend asked for a whole answer (ChatRequest.whole_answer, as the HTTP door sets it for a request
without "stream"): one JSON answer from the upstream, the same events and usage as the stream would give,
and every failure mapped exactly as the streamed path maps it."""

from __future__ import annotations

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb

from router.backends.base import BackendError
from router.backends.openai_backend import OpenAIBackend
from router.config.settings import ProviderConfig
from tests.providers.conftest import OPENAI_KEY, chat_request, collect
from tests.support.fake_http import Fault
from tests.support.fake_openai import FakeOpenAI


def _whole(model: str = "gpt-4o-mini", **sampling: object) -> pb.ChatRequest:
    request = chat_request(model, **sampling)
    request.whole_answer = True
    return request


async def _error(backend: OpenAIBackend, request: pb.ChatRequest) -> BackendError:
    with pytest.raises(BackendError) as error:
        await collect(backend.chat(request, timeout=5.0))
    return error.value


async def test_a_whole_answer_is_asked_for_whole_and_gives_text_then_usage(
    openai_backend: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    responses = [r async for r in openai_backend.chat(_whole(max_tokens=3), timeout=5.0)]
    assert [r.WhichOneof("event") for r in responses] == ["delta", "usage"]
    assert responses[0].delta.text == "Hello from the "
    usage = responses[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (17, 3)
    assert (usage.model, usage.backend, usage.request_id) == ("gpt-4o-mini", "oa", "req-1")
    assert usage.finish_reason == pb.FINISH_REASON_LENGTH
    sent = fake_openai.requests[-1].json
    assert "stream" not in sent
    assert "stream_options" not in sent
    assert sent["max_completion_tokens"] == 3


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=429, retry_after="7"),
        Fault(status=429),
        Fault(status=500),
        Fault(status=503),
        Fault(status=400, message=f"bad request from key {OPENAI_KEY}"),
        Fault(status=422),
        Fault(status=404, code="model_not_found", message="no such model"),
        Fault(status=404, message="no such route"),
        Fault(status=403),
    ],
)
async def test_an_error_status_maps_as_for_a_stream(
    openai_backend: OpenAIBackend, fake_openai: FakeOpenAI, fault: Fault
) -> None:
    fake_openai.inject(fault)
    streamed = await _error(openai_backend, chat_request("gpt-4o-mini"))
    fake_openai.inject(fault)
    whole = await _error(openai_backend, _whole())
    assert (whole.message, whole.retryable, whole.status) == (
        streamed.message,
        streamed.retryable,
        streamed.status,
    )
    assert whole.retry_after_s == pytest.approx(streamed.retry_after_s, abs=2.0)
    assert OPENAI_KEY not in str(whole)


@pytest.mark.parametrize("fault", [Fault(malformed_after=0), Fault(error_event_after=0), Fault(cut_after=0)])
async def test_a_broken_answer_is_retryable_unavailable(
    openai_backend: OpenAIBackend, fake_openai: FakeOpenAI, fault: Fault
) -> None:
    fake_openai.inject(fault)
    error = await _error(openai_backend, _whole())
    assert error.retryable
    assert error.status == grpc.StatusCode.UNAVAILABLE


async def test_a_stalled_server_times_out_and_is_hung_up_on(
    openai_backend: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    fake_openai.inject(Fault(stall=True))
    # Long enough for the request to reach the server on a busy machine (with 0.3 s the client sometimes gave
    # up before the server had it, and no hang-up was seen): what is tested is what happens after.
    with pytest.raises(BackendError) as error:
        await collect(openai_backend.chat(_whole(), timeout=2.0))
    assert error.value.retryable
    assert error.value.status == grpc.StatusCode.DEADLINE_EXCEEDED
    assert fake_openai.requests  # it was sent, then hung up on
    await fake_openai.wait_disconnect()


async def test_an_answer_without_usage_gets_estimated_usage(fake_openai: FakeOpenAI) -> None:
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
        _, usage = await collect(backend.chat(_whole("gpt-4o"), timeout=5.0))
    finally:
        await backend.close()
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens == 7  # 25 characters at ~4 a token, as for a stream


async def test_tool_calls_come_whole_with_their_index(
    openai_backend: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    fake_openai.calls_per_answer = 2
    request = _whole()
    for name in ("get_weather", "get_time"):
        request.tools.add(name=name, parameters='{"type": "object"}')
    responses = [r async for r in openai_backend.chat(request, timeout=5.0)]
    calls = [r.tool_call for r in responses if r.HasField("tool_call")]
    assert [(c.index, c.id, c.name, c.arguments) for c in calls] == [
        (0, "call_0_get_weather", "get_weather", fake_openai.tool_arguments),
        (1, "call_1_get_time", "get_time", fake_openai.tool_arguments),
    ]
    assert responses[-1].usage.finish_reason == pb.FINISH_REASON_TOOL_CALLS


async def test_nothing_listening_is_retryable_unavailable() -> None:
    async with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        base_url = fake.base_url
    backend = OpenAIBackend(
        ProviderConfig(
            name="oa", kind="openai", api_key=OPENAI_KEY, base_url=base_url, chat_models=["gpt-4o"]
        )
    )
    try:
        error = await _error(backend, _whole("gpt-4o"))
    finally:
        await backend.close()
    assert error.retryable
    assert error.status == grpc.StatusCode.UNAVAILABLE
