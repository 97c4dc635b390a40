from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.router_double import DoubleServer, RouterDouble


@pytest.fixture(scope="session")
def double_server() -> Iterator[DoubleServer]:
    server = DoubleServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def double(double_server: DoubleServer) -> RouterDouble:
    double_server.servicer.reset()
    return double_server.servicer


@pytest.fixture
def address(double_server: DoubleServer) -> str:
    return double_server.address


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own router and key must not leak into the tests.
    monkeypatch.delenv("MODELYARD_ROUTER", raising=False)
    monkeypatch.delenv("MODELYARD_API_KEY", raising=False)


def make_wav(path: Path, seconds: float, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(rate * seconds))
    return path


@pytest.fixture
def wav_file(tmp_path: Path) -> Path:
    # 5 s of 16 kHz 16-bit mono: 160,044 bytes, so three 64 KiB chunks (65,536 + 65,536 + 28,972).
    return make_wav(tmp_path / "speech.wav", 5.0)
