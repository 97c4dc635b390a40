"""The servers' event loop: uvloop where installed, asyncio's own when MODELYARD_EVENT_LOOP=asyncio."""

from __future__ import annotations

import asyncio
import threading

import pytest

from core import event_loop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def _loop_used() -> str:
    """event_loop.run in a thread of its own: the main thread's event loop (other tests use it) is left alone."""
    found: list[str] = []
    thread = threading.Thread(target=lambda: found.append(event_loop.run(_loop_module())))
    thread.start()
    thread.join()
    return found[0]


def test_uvloop_by_default() -> None:
    pytest.importorskip("uvloop")
    assert _loop_used().startswith("uvloop")


def test_asyncio_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_EVENT_LOOP", "asyncio")
    assert _loop_used().startswith("asyncio")
