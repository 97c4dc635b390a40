"""A transcription whose caller goes away stops decoding at the next segment boundary (the README: "Whisper stops
between segments"), on the real faster-whisper model with the packaged tiny.en.

faster-whisper decodes lazily, one 30-second window at a time, as its segment iterator is pulled; the engine's
decoding thread pulls one segment, hands it over, and checks for a stop before pulling the next. The model is
wrapped (here, in the test) to count the segments the engine pulled from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest
from faster_whisper import WhisperModel
from modelyard.v1 import inference_pb2 as pb

from gpu_worker.audio import decode_audio_bytes
from gpu_worker.engines.base import TranscribeOptions, TranscriptSegment
from gpu_worker.engines.whisper import WhisperEngine, resolve_whisper_model
from tests.worker.speech import make_speech_wav

pytestmark = pytest.mark.engines

# Read twice over, more than three of Whisper's 30-second windows.
SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "a stitch in time saves nine",
    "every cloud has a silver lining",
    "better late than never but never late is better",
    "the early bird catches the worm",
    "actions speak louder than words",
    "all that glitters is not gold",
    "when in rome do as the romans do",
    "the pen is mightier than the sword",
    "fortune favours the bold",
    "practice makes perfect",
    "an apple a day keeps the doctor away",
    "two wrongs do not make a right",
    "the grass is always greener on the other side",
    "do not count your chickens before they hatch",
    "you can lead a horse to water but you cannot make it drink",
    "rome was not built in a day",
    "a picture is worth a thousand words",
    "honesty is the best policy",
    "where there is smoke there is fire",
    "birds of a feather flock together",
    "look before you leap",
    "too many cooks spoil the broth",
    "the squeaky wheel gets the grease",
]


class CountingModel:
    """A real WhisperModel whose segment iterators count what is pulled from them."""

    def __init__(self, model: WhisperModel) -> None:
        self._model = model
        self.pulled: list[int] = []  # per transcribe() call, in order

    def transcribe(self, audio: Any, **options: Any) -> tuple[Iterator[Any], Any]:
        segments, info = self._model.transcribe(audio, **options)
        call = len(self.pulled)
        self.pulled.append(0)

        def counted() -> Iterator[Any]:
            for segment in segments:
                self.pulled[call] += 1
                yield segment

        return counted(), info


@pytest.fixture(scope="module")
def long_audio(tmp_path_factory: pytest.TempPathFactory) -> Any:
    text = ". ".join(SENTENCES + SENTENCES[::-1]) + "."  # each proverb twice: about 100 s of speech
    wav = make_speech_wav(tmp_path_factory.mktemp("long"), text, "long")
    return decode_audio_bytes(Path(wav).read_bytes(), pb.AUDIO_ENCODING_UNSPECIFIED)


async def test_a_cancelled_transcription_stops_decoding_at_the_next_segment(long_audio: Any) -> None:
    path, model_id = resolve_whisper_model("whisper-tiny.en")
    counting = CountingModel(WhisperModel(path, device="cpu", compute_type="default", num_workers=1))
    engine = WhisperEngine(counting, model_id, workers=1)  # a WhisperModel, counted (duck-typed)
    options = TranscribeOptions(language="en")
    try:
        # The whole recording, once: how many segments it has.
        whole = [e async for e in engine.transcribe(long_audio, options) if isinstance(e, TranscriptSegment)]
        (total,) = counting.pulled
        assert total == len(whole)
        assert whole[-1].end > 90, "the recording must span more than three decoding windows"

        async with aclosing(engine.transcribe(long_audio, options)) as events:
            async for event in events:
                if isinstance(event, TranscriptSegment):
                    break  # the caller goes away after the first segment, as a cancelled call does
        # One decoding thread: once the next job has run, the cancelled one's thread has returned.
        assert [e async for e in engine.transcribe(long_audio[:16_000], options)]
        cancelled = counting.pulled[1]
        # It stopped within a segment of where the caller left; decoding on would have pulled them all.
        assert 1 <= cancelled < total
        assert engine.load().aborted_total == 1
        assert engine.load().running == 0
    finally:
        await engine.close()
