"""The fake OpenAI and Anthropic APIs set up the way a user sets up the real ones (keys and base URLs in the
environment), and a router loaded from a config file as `modelyard router --config` loads it: the setup the
cloud-routing, whole-answer and CLI tests share."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from router.config.loader import load_config
from router.server import RouterServer
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.fake_openai import FakeOpenAI


@contextlib.asynccontextmanager
async def clouds_in_environment(
    monkeypatch: pytest.MonkeyPatch, openai: FakeOpenAI | None = None, anthropic: FakeAnthropic | None = None
) -> AsyncIterator[tuple[FakeOpenAI, FakeAnthropic]]:
    """Both fakes running (these, or ones with their defaults), named by OPENAI_* and ANTHROPIC_* variables."""
    async with openai or FakeOpenAI() as started_openai, anthropic or FakeAnthropic() as started_anthropic:
        monkeypatch.setenv("OPENAI_API_KEY", started_openai.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", started_openai.base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", started_anthropic.api_key)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", started_anthropic.base_url)
        yield started_openai, started_anthropic


async def start_configured_router(config_file: Path | None = None) -> RouterServer:
    """A router started from `config_file` (None: the defaults) and the environment, on a free port."""
    config = load_config(config_file, env=os.environ)
    config.listen = "127.0.0.1:0"
    server = RouterServer(config)
    await server.start()
    return server


def config_file(directory: Path, text: str) -> Path:
    """`text` written as router.yaml in `directory`."""
    path = directory / "router.yaml"
    path.write_text(text)
    return path
