"""The Transcribe request stream: one config message, then the audio in fixed-size chunks."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from os import PathLike
from typing import IO

from modelyard.v1 import inference_pb2 as pb

# Small enough to keep memory flat on both sides, large enough that per-message overhead is noise.
CHUNK_BYTES = 64 * 1024

# A path to an audio file, its bytes, or a binary file object open for reading.
AudioSource = str | PathLike[str] | bytes | bytearray | memoryview | IO[bytes]


def config(
    model: str, language: str | None, word_timestamps: bool, prompt: str | None, request_id: str | None
) -> pb.TranscribeConfig:
    # The client sends audio files as they are; the worker's decoder reads the container.
    return pb.TranscribeConfig(
        request_id=request_id or "",
        model=model,
        language=language or "",
        word_timestamps=word_timestamps,
        prompt=prompt or "",
        encoding=pb.AUDIO_ENCODING_UNSPECIFIED,
    )


@contextmanager
def open_audio(source: AudioSource) -> Iterator[IO[bytes]]:
    """A readable binary stream; a path is opened (and closed after), a caller's file is left open."""
    if isinstance(source, str | PathLike):
        with open(source, "rb") as f:
            yield f
    elif isinstance(source, bytes | bytearray | memoryview):
        yield io.BytesIO(source)
    elif isinstance(source, io.TextIOBase):
        raise TypeError("audio file must be opened in binary mode ('rb')")
    elif hasattr(source, "read"):
        yield source
    else:
        raise TypeError(f"audio must be a path, bytes or a binary file, not {type(source).__name__}")


def requests(cfg: pb.TranscribeConfig, audio: IO[bytes]) -> Iterator[pb.TranscribeRequest]:
    yield pb.TranscribeRequest(config=cfg)
    while chunk := audio.read(CHUNK_BYTES):
        yield pb.TranscribeRequest(audio=chunk)
