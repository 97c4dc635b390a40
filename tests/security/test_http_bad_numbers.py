"""Issue 24 item 14: deep JSON and out-of-range numbers on the HTTP door are 400s naming the field, not 500s."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.security.helpers import config, running_router

HEADERS = {"Content-Type": "application/json"}


def _chat(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}


@pytest.fixture
async def door() -> AsyncIterator[str]:
    async with running_router(config(http_listen="127.0.0.1:0")) as router:
        assert router.http is not None
        yield router.http.base_url


async def _post(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=HEADERS) as answer:
        return answer.status, await answer.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"model": "m", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "body"),
        (json.dumps(_chat(max_tokens=2**40)).encode(), "max_tokens"),
        (json.dumps(_chat(max_completion_tokens=2**40)).encode(), "max_completion_tokens"),
        (json.dumps(_chat(seed=2**64)).encode(), "seed"),
        (json.dumps(_chat(n=2**40)).encode(), "n"),
        (json.dumps(_chat(top_logprobs=2**33, logprobs=True)).encode(), "top_logprobs"),
    ],
)
async def test_bad_values_are_400_naming_the_field(door: str, body: bytes, field: str) -> None:
    status, answer = await _post(f"{door}/chat/completions", body)
    assert status == 400, answer
    assert answer["error"]["message"].startswith(f"{field}: ")


async def test_deep_json_on_the_messages_api(door: str) -> None:
    body = b'{"model": "m", "max_tokens": 5, "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    status, answer = await _post(f"{door}/messages", body)
    assert status == 400, answer
    assert "body: " in json.dumps(answer)
