"""Real speech for the transcription tests, synthesised with Debian's espeak-ng and resampled with sox."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.system_tools import require

SENTENCE = "the quick brown fox jumps over the lazy dog"


def make_speech_wav(directory: Path, text: str = SENTENCE, name: str = "speech") -> Path:
    """Write `text` as 16 kHz mono 16-bit WAV in `directory`; skips the test without espeak-ng and sox."""
    require("espeak-ng", "sox")
    raw = directory / f"{name}-raw.wav"
    out = directory / f"{name}.wav"
    subprocess.run(["espeak-ng", "-s", "140", "-w", str(raw), text], check=True, capture_output=True)
    subprocess.run(
        ["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out)], check=True, capture_output=True
    )
    return out


def wav_to_pcm_s16le(wav: Path) -> bytes:
    """The raw samples of a 16 kHz mono 16-bit WAV (what a microphone stream would send)."""
    import wave

    with wave.open(str(wav), "rb") as reader:
        if (reader.getframerate(), reader.getnchannels(), reader.getsampwidth()) != (16000, 1, 2):
            raise ValueError(f"{wav}: expected 16 kHz mono 16-bit audio")
        return reader.readframes(reader.getnframes())
