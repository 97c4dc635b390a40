"""Speech-to-text through a real Worker server on faster-whisper with the packaged Whisper tiny.en."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb

from core import wire
from gpu_worker.engine_set import EngineSet
from gpu_worker.engines.whisper import WhisperEngine
from tests.support.polling import wait_until
from tests.worker.servers import read_rest, serving
from tests.worker.speech import SENTENCE, make_speech_wav

pytestmark = pytest.mark.engines


async def _requests(
    config: pb.TranscribeConfig, audio: bytes, chunk: int = 8192
) -> AsyncIterator[pb.TranscribeRequest]:
    yield pb.TranscribeRequest(config=config)
    for start in range(0, len(audio), chunk):
        yield pb.TranscribeRequest(audio=audio[start : start + chunk])


def _words_heard(segments: Iterable[pb.Segment]) -> set[str]:
    text = " ".join(segment.text for segment in segments).lower()
    return {word.strip(".,!?") for word in text.split()}


async def test_wav_file_streams_info_segments_usage(
    whisper_engine: WhisperEngine, speech_file: bytes
) -> None:
    config = pb.TranscribeConfig(request_id="t1", model="whisper-tiny.en", word_timestamps=True)
    async with serving(EngineSet(transcribe=[whisper_engine])) as stub:
        responses = await read_rest(stub.Transcribe(_requests(config, speech_file)))
    kinds = [response.WhichOneof("event") for response in responses]
    assert kinds[0] == "info"
    assert kinds[-1] == "usage"
    assert set(kinds[1:-1]) == {"segment"}
    info = responses[0].info
    assert info.language == "en"
    assert 1.5 < info.duration_seconds < 10
    segments = [response.segment for response in responses[1:-1]]
    assert len(_words_heard(segments) & set(SENTENCE.split())) >= 5
    assert any(segment.words for segment in segments)
    usage = responses[-1].usage
    assert usage.audio_seconds == pytest.approx(info.duration_seconds, abs=0.01)
    assert usage.model == "whisper-tiny.en"
    assert 0 < wire.ms_of(usage.ttft) <= wire.ms_of(usage.latency)


async def test_raw_pcm(whisper_engine: WhisperEngine, speech_pcm: bytes) -> None:
    config = pb.TranscribeConfig(
        model="whisper-tiny.en", language="en", encoding=pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000
    )
    async with serving(EngineSet(transcribe=[whisper_engine])) as stub:
        responses = await read_rest(stub.Transcribe(_requests(config, speech_pcm)))
    segments = [r.segment for r in responses if r.WhichOneof("event") == "segment"]
    assert len(_words_heard(segments) & set(SENTENCE.split())) >= 5


THREE_SENTENCES = (
    "the quick brown fox jumps over the lazy dog",
    "seven purple elephants were singing in the garden",
    "my computer keyboard needs a new battery tomorrow",
)


def _distinct(sentence: str) -> set[str]:
    return {word for word in sentence.split() if len(word) >= 5}


async def test_concurrent_transcriptions_each_get_their_own_transcript(
    whisper_engine: WhisperEngine, tmp_path: Path
) -> None:
    """Three different recordings at once: each stream hears its own sentence, none another's, and the
    engine held more than one of them at a time (nothing serialised them ahead of it)."""
    audio = [
        make_speech_wav(tmp_path, text, name=f"s{i}").read_bytes() for i, text in enumerate(THREE_SENTENCES)
    ]
    config = pb.TranscribeConfig(model="whisper-tiny.en")
    most = 0

    async def watch() -> None:
        nonlocal most
        while True:
            most = max(most, whisper_engine.load().running)
            await asyncio.sleep(0.001)

    async with serving(EngineSet(transcribe=[whisper_engine])) as stub:
        watcher = asyncio.create_task(watch())
        try:
            results = await asyncio.gather(*(read_rest(stub.Transcribe(_requests(config, a))) for a in audio))
        finally:
            watcher.cancel()
    for mine, responses in zip(THREE_SENTENCES, results, strict=True):
        heard = _words_heard(r.segment for r in responses if r.WhichOneof("event") == "segment")
        others = set().union(*(_distinct(s) for s in THREE_SENTENCES if s != mine))
        assert len(heard & set(mine.split())) >= 4, (mine, heard)
        assert not heard & others, (mine, heard)
    assert most >= 2
    await wait_until(lambda: whisper_engine.load().running == 0)
    assert whisper_engine.load().queued_audio_seconds == 0


@pytest.mark.parametrize(
    ("messages", "code", "detail"),
    [
        (
            [
                pb.TranscribeRequest(config=pb.TranscribeConfig(model="whisper-tiny.en")),
                pb.TranscribeRequest(audio=b"no" * 500),
            ],
            grpc.StatusCode.INVALID_ARGUMENT,
            "audio: ",
        ),
        (
            [pb.TranscribeRequest(config=pb.TranscribeConfig(model="whisper-tiny.en"))],
            grpc.StatusCode.INVALID_ARGUMENT,
            "audio: no audio",
        ),
        ([pb.TranscribeRequest(audio=b"RIFF")], grpc.StatusCode.INVALID_ARGUMENT, "config:"),
        (
            [
                pb.TranscribeRequest(
                    config=pb.TranscribeConfig(
                        model="whisper-tiny.en", encoding=pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000
                    )
                ),
                pb.TranscribeRequest(audio=b"\x00\x01\x02"),
            ],
            grpc.StatusCode.INVALID_ARGUMENT,
            "audio: PCM_S16LE",
        ),
        (
            [pb.TranscribeRequest(config=pb.TranscribeConfig(model="whisper-large"))],
            grpc.StatusCode.NOT_FOUND,
            "whisper-tiny.en",
        ),
    ],
)
async def test_bad_audio_requests(
    whisper_engine: WhisperEngine, messages: list[pb.TranscribeRequest], code: grpc.StatusCode, detail: str
) -> None:
    async def stream() -> AsyncIterator[pb.TranscribeRequest]:
        for message in messages:
            yield message

    async with serving(EngineSet(transcribe=[whisper_engine])) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await read_rest(stub.Transcribe(stream()))
    assert error.value.code() == code
    assert detail in (error.value.details() or "")


async def test_closing_early_stops_decoding(whisper_engine: WhisperEngine, speech_file: bytes) -> None:
    from gpu_worker.audio import decode_audio_bytes
    from gpu_worker.engines.base import TranscribeOptions

    audio = decode_audio_bytes(speech_file, pb.AUDIO_ENCODING_UNSPECIFIED)
    aborted = whisper_engine.load().aborted_total
    events = whisper_engine.transcribe(audio, TranscribeOptions())
    first = await anext(events)
    assert first.__class__.__name__ == "TranscriptInfo"
    await events.aclose()
    assert whisper_engine.load().aborted_total == aborted + 1
    assert whisper_engine.load().running == 0
