"""The blocking Client against a real grpc.aio server running the Router test double."""

from __future__ import annotations

import io
from pathlib import Path

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb
from modelyard_client import (
    Cancelled,
    ChatResult,
    Client,
    DeadlineExceeded,
    InvalidArgument,
    ModelyardError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Segment,
    TextDelta,
    TranscriptionInfo,
    Unauthenticated,
    Unavailable,
    Usage,
)
from modelyard_client._audio import AudioSource

from tests.client.router_double import DELTAS, RouterDouble, error_message


def test_chat_streams_deltas_then_usage(double: RouterDouble, address: str) -> None:
    with Client(address) as client:
        events = list(client.chat("hi", model="m", request_id="r-1"))
    assert events[:-1] == [TextDelta(t) for t in DELTAS]
    usage = events[-1]
    assert isinstance(usage, Usage)
    assert (usage.request_id, usage.backend, usage.model, usage.completion_tokens) == (
        "r-1",
        "double",
        "m",
        3,
    )


def test_chat_sends_every_option(double: RouterDouble, address: str) -> None:
    with Client(address) as client:
        list(
            client.chat(
                [("user", "a"), ("assistant", "b"), ("user", "c")],
                model="qwen",
                system="terse",
                temperature=0.2,
                top_p=0.9,
                max_tokens=64,
                stop=["\n\n"],
                seed=3,
                provider="gpu-a",
                strategy="least_loaded",
                max_cost_usd=0.5,
                task="summarize",
            )
        )
    (request,) = double.chat_requests
    assert request.model == "qwen"
    assert [m.content[0].text for m in request.messages] == ["terse", "a", "b", "c"]
    s, r = request.sampling, request.routing
    assert (s.max_tokens, list(s.stop), s.seed) == (64, ["\n\n"], 3)
    assert s.temperature == pytest.approx(0.2)
    assert (r.provider, r.strategy, r.task, r.max_cost_usd) == (
        "gpu-a",
        pb.STRATEGY_LEAST_LOADED,
        "summarize",
        0.5,
    )


def test_chat_text_joins_the_deltas(double: RouterDouble, address: str) -> None:
    with Client(address) as client:
        result = client.chat_text("hi")
    assert isinstance(result, ChatResult)
    assert result.text == "Hello, world"
    assert result.usage is not None
    assert result.usage.finish_reason == "stop"


def test_chat_text_asks_for_a_whole_answer_and_chat_for_a_stream(double: RouterDouble, address: str) -> None:
    with Client(address) as client:
        client.chat_text("hi")
        list(client.chat("hi"))
    assert [request.whole_answer for request in double.chat_requests] == [True, False]


def test_api_key_is_sent_as_bearer_metadata(double: RouterDouble, address: str) -> None:
    with Client(address, api_key="sk-test") as client:
        client.chat_text("hi")
        client.models()
    assert [m.get("authorization") for m in double.metadata] == ["Bearer sk-test"] * 2


def test_api_key_and_address_from_the_environment(
    double: RouterDouble, address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_ROUTER", address)
    monkeypatch.setenv("MODELYARD_API_KEY", "from-env")
    with Client() as client:
        assert client.address == address
        client.models()
    with Client(api_key="") as client:  # an empty key means: send none
        client.models()
    assert [m.get("authorization") for m in double.metadata] == ["Bearer from-env", None]


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgument),
        (grpc.StatusCode.NOT_FOUND, NotFound),
        (grpc.StatusCode.UNAUTHENTICATED, Unauthenticated),
        (grpc.StatusCode.PERMISSION_DENIED, PermissionDenied),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ResourceExhausted),
        (grpc.StatusCode.UNAVAILABLE, Unavailable),
        (grpc.StatusCode.CANCELLED, Cancelled),
    ],
)
def test_statuses_become_modelyard_errors(
    double: RouterDouble, address: str, code: grpc.StatusCode, cls: type[ModelyardError]
) -> None:
    with Client(address) as client:
        with pytest.raises(cls) as chat_error:
            list(client.chat("hi", model=f"error:{code.name}"))
        with pytest.raises(cls) as embed_error:
            client.embed("x", model=f"error:{code.name}")
    for error in (chat_error.value, embed_error.value):
        assert (error.code, error.message) == (code.name, error_message(code))
        assert not isinstance(error, grpc.RpcError)


def test_a_failure_mid_stream_comes_after_the_text_already_sent(double: RouterDouble, address: str) -> None:
    received: list[object] = []
    with Client(address) as client, pytest.raises(Unavailable):
        for event in client.chat("hi", model="error-after:UNAVAILABLE"):
            received.append(event)
    assert received == [TextDelta(DELTAS[0])]


def test_timeout_is_the_call_deadline(double: RouterDouble, address: str) -> None:
    with Client(address, timeout=0.3) as client, pytest.raises(DeadlineExceeded):
        list(client.chat("hi", model="slow"))


def test_leaving_the_loop_early_cancels_the_call(double: RouterDouble, address: str) -> None:
    with Client(address) as client:
        events = client.chat("hi", model="slow")
        for _ in events:
            break
        events.close()  # type: ignore[attr-defined]
        assert double.cancelled.wait(5)


def test_unreachable_router_is_unavailable(double: RouterDouble) -> None:
    with Client("127.0.0.1:1", timeout=5) as client, pytest.raises(Unavailable):
        client.models()


def test_embed(double: RouterDouble, address: str) -> None:
    with Client(address) as client:
        result = client.embed(["a", "bcd"], model="e5")
    assert result.vectors == [[1.0, 0.0], [3.0, 1.0]]
    assert result.usage is not None
    assert result.usage.prompt_tokens == 2


@pytest.mark.parametrize("kind", ["path", "bytes", "file"])
def test_transcribe_streams_audio_in_64_kib_chunks(
    double: RouterDouble, address: str, wav_file: Path, kind: str
) -> None:
    data = wav_file.read_bytes()
    sources: dict[str, AudioSource] = {"path": wav_file, "bytes": data, "file": io.BytesIO(data)}
    source = sources[kind]
    with Client(address) as client:
        events = list(client.transcribe(source, language="en", word_timestamps=True, prompt="Modelyard"))
    assert double.audio_chunks == [65536, 65536, len(data) - 2 * 65536]
    (config,) = double.transcribe_configs
    assert (config.model, config.language, config.word_timestamps, config.prompt) == (
        "whisper-tiny.en",
        "en",
        True,
        "Modelyard",
    )
    info, *segments, usage = events
    assert isinstance(info, TranscriptionInfo)
    assert info.duration_seconds == pytest.approx(len(data) / 32000)
    assert all(isinstance(s, Segment) for s in segments)
    assert [s.text for s in segments if isinstance(s, Segment)] == [f" chunk {i} of 3" for i in (1, 2, 3)]
    assert isinstance(segments[0], Segment)
    assert segments[0].words[0].word == " chunk"
    assert isinstance(usage, Usage)


def test_models(double: RouterDouble, address: str) -> None:
    with Client(address) as client:
        models = client.models()
    assert [(m.id, m.capabilities, m.backends) for m in models] == [
        ("qwen-small", ("chat",), ("gpu-a", "gpu-b")),
        ("whisper-tiny.en", ("transcribe",), ("gpu-a",)),
    ]


def test_status(double: RouterDouble, address: str) -> None:
    with Client(address) as client:
        status = client.status()
    assert (status.router_id, status.version) == ("double-router", "9.9.9")
    worker, cloud = status.backends
    assert worker.load is not None
    assert (worker.load.running, worker.load.waiting, worker.in_flight) == (2, 1, 3)
    assert worker.models[0].engine == "vllm"
    assert cloud.load is None
    assert cloud.draining


def test_an_error_while_audio_is_still_uploading_keeps_the_servers_status(
    double: RouterDouble, address: str
) -> None:
    audio = b"\x00" * (8 * 64 * 1024)
    with Client(address) as client:
        for _ in range(5):
            with pytest.raises(NotFound):
                list(client.transcribe(audio, model="error:NOT_FOUND"))


def test_usage(double: RouterDouble, address: str) -> None:
    with Client(address, api_key="admin") as client:
        report = client.usage(days=7, tenant="acme")
        with pytest.raises(PermissionDenied):
            client.usage(tenant="error:PERMISSION_DENIED")
    assert (report.days, report.tenant) == (7, "acme")
    assert [(r.backend, r.model, r.calls) for r in report.rows] == [
        ("gpu-a", "qwen-small", 40),
        ("openai", "gpt-4o-mini", 2),
    ]
    assert double.metadata[0]["authorization"] == "Bearer admin"
