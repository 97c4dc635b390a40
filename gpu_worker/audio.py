"""Turning the bytes a client streamed into Whisper's input: mono float32 samples at 16 kHz."""

from __future__ import annotations

import io

import numpy as np
from modelyard.v1 import inference_pb2 as pb

from core.constants import SAMPLE_RATE_HZ
from core.errors import InvalidArgument
from gpu_worker.engines.base import AudioSamples

MAX_AUDIO_BYTES = (
    512 * 1024 * 1024
)  # beyond this a client should split the audio; it would not fit in memory well


def decode_audio_bytes(data: bytes, encoding: int) -> AudioSamples:
    """Decode an audio file in any container PyAV reads, or raw PCM s16le; blocking, so call it in a thread.

    Raises InvalidArgument("audio: ...") for bytes that are not audio, so the caller learns it sent the wrong thing.
    """
    if not data:
        raise InvalidArgument("audio: no audio bytes were sent after the config")
    if encoding == pb.AUDIO_ENCODING_PCM_S16LE:
        if len(data) % 2:
            raise InvalidArgument(f"audio: PCM_S16LE needs whole 2-byte samples; got {len(data)} bytes")
        pcm = np.frombuffer(data, dtype="<i2")
        return (pcm.astype(np.float32) / 32768.0).astype(np.float32)
    return _decode_container(data)


def _decode_container(data: bytes) -> AudioSamples:
    import av
    from faster_whisper import decode_audio

    try:
        samples = decode_audio(io.BytesIO(data), sampling_rate=SAMPLE_RATE_HZ)
    except (av.error.FFmpegError, IndexError, ValueError) as error:
        # IndexError: a container PyAV can open that has no audio stream (e.g. a picture).
        raise InvalidArgument(f"audio: not a readable audio file ({_reason(error)})") from error
    if samples.size == 0:
        raise InvalidArgument("audio: the file holds no audio samples")
    return np.asarray(samples, dtype=np.float32)


def _reason(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text[:200]
