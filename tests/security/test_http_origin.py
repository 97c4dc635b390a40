"""Issue 24 item 5: a web page cannot drive the keyless loopback HTTP door (simple POSTs, DNS rebinding)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from router.server import RouterServer
from tests.security.helpers import config, running_router
from tests.support.echo_worker import EchoWorker

CHAT = json.dumps({"model": "echo", "messages": [{"role": "user", "content": "spend my keys"}]}).encode()


@pytest.fixture
async def door() -> AsyncIterator[tuple[RouterServer, str]]:
    worker = EchoWorker("w1")
    await worker.start()
    async with running_router(
        config(http_listen="127.0.0.1:0", http_allowed_hosts=("dev.example",), report_interval_ms=2000)
    ) as router:
        await worker.register(router.address)
        assert router.http is not None
        yield router, router.http.base_url
    await worker.stop()


async def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as answer:
        await answer.read()
        return answer.status


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""]
)
async def test_json_endpoints_take_application_json_only(
    door: tuple[RouterServer, str], content_type: str
) -> None:
    _, url = door
    headers = {"Content-Type": content_type} if content_type else {}
    assert await _post(f"{url}/chat/completions", CHAT, headers) == 415
    assert await _post(f"{url}/chat/completions", CHAT, {"Content-Type": "application/json"}) == 200


async def test_uploads_take_multipart_only(door: tuple[RouterServer, str]) -> None:
    _, url = door
    assert (
        await _post(f"{url}/audio/transcriptions", b"model=whisper-1", {"Content-Type": "text/plain"}) == 415
    )


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8080", "10.0.0.5", "[fe80::1]:80"])
async def test_a_keyless_door_answers_loopback_hosts_only(door: tuple[RouterServer, str], host: str) -> None:
    _, url = door
    json_type = {"Content-Type": "application/json"}
    assert await _post(f"{url}/chat/completions", CHAT, {**json_type, "Host": host}) == 403
    for allowed in ("localhost:1234", "127.0.0.1", "[::1]:8080", "dev.example"):
        assert await _post(f"{url}/chat/completions", CHAT, {**json_type, "Host": allowed}) == 200
