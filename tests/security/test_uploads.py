"""Issue 24 items 6 and 7: one tenant's stalled uploads cannot keep others out, a stalled upload is ended, and
a transcription form's fields are capped in number and bytes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2_grpc

from router.accounting.auth import hash_key
from router.config.accounting import ApiKey
from router.config.limits import LimitsConfig
from router.config.settings import ProviderConfig
from router.server import RouterServer
from tests.security.helpers import config, running_router
from tests.support.fake_openai import FakeOpenAI
from tests.support.polling import wait_until

KEYS = [ApiKey("acme", hash_key("k-acme")), ApiKey("other", hash_key("k-other"))]
PCM = b"\0\1" * 16_000  # one second of 16 kHz PCM


def _config(fake: FakeOpenAI, **limits: object) -> object:
    provider = ProviderConfig(
        name="cloud",
        kind="openai_compatible",
        api_key=fake.api_key,
        base_url=fake.base_url,
        transcribe_models=["whisper-1"],
    )
    return config(
        keys=KEYS,
        providers=[provider],
        http_listen="127.0.0.1:0",
        limits=LimitsConfig(**limits),  # type: ignore[arg-type]
    )


def _auth(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


async def _upload(
    stub: router_pb2_grpc.RouterServiceStub, key: str, stall: asyncio.Event | None
) -> grpc.StatusCode:
    """A PCM upload; with `stall`, it sends one chunk and then nothing until the event is set."""

    async def messages() -> AsyncIterator[pb.TranscribeRequest]:
        config = pb.TranscribeConfig(
            model="whisper-1", encoding=pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16_000
        )
        yield pb.TranscribeRequest(config=config)
        yield pb.TranscribeRequest(audio=PCM)
        if stall is not None:
            await stall.wait()

    try:
        async for _ in stub.Transcribe(messages(), metadata=_auth(key), timeout=60):
            pass
    except grpc.aio.AioRpcError as e:
        return e.code()
    return grpc.StatusCode.OK


async def test_one_tenants_stalled_uploads_leave_room_for_others() -> None:
    release = asyncio.Event()
    async with (
        FakeOpenAI() as fake,
        running_router(_config(fake, upload_idle_timeout_s=300)) as router,  # type: ignore[arg-type]
        grpc.aio.insecure_channel(router.address) as channel,
    ):
        stub = router_pb2_grpc.RouterServiceStub(channel)
        stalled = [asyncio.create_task(_upload(stub, "k-acme", release)) for _ in range(8)]
        await wait_until(lambda: router.pipeline.uploads.uploads == 4, message="acme's uploads did not start")
        assert await _upload(stub, "k-other", None) == grpc.StatusCode.OK
        release.set()
        codes = await asyncio.gather(*stalled)
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 4  # over limits.max_uploads_per_tenant


async def test_a_stalled_upload_is_ended_and_frees_its_slot() -> None:
    never = asyncio.Event()
    async with FakeOpenAI() as fake, running_router(_config(fake, upload_idle_timeout_s=0.5)) as router:  # type: ignore[arg-type]
        async with grpc.aio.insecure_channel(router.address) as channel:
            code = await _upload(router_pb2_grpc.RouterServiceStub(channel), "k-acme", never)
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert router.pipeline.uploads.uploads == 0
        assert router.http is not None
        status = await _http_stalled(router)
        assert status == 504
        assert router.pipeline.uploads.uploads == 0


async def _http_stalled(router: RouterServer) -> int:
    assert router.http is not None
    never = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield (
            b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n' + PCM
        )
        await never.wait()

    headers = {"Authorization": "Bearer k-acme", "Content-Type": "multipart/form-data; boundary=b"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{router.http.base_url}/audio/transcriptions", data=body(), headers=headers) as answer,
    ):
        return answer.status


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ([("prompt", "p")] * 1500, "http_max_form_fields"),
        ([("prompt", "x" * 100_000)], "http_max_form_bytes"),
    ],
)
async def test_form_fields_are_capped(fields: list[tuple[str, str]], expected: str) -> None:
    async with FakeOpenAI() as fake, running_router(_config(fake)) as router:  # type: ignore[arg-type]
        assert router.http is not None
        form = aiohttp.FormData()
        for name, value in [("model", "whisper-1"), *fields]:
            form.add_field(name, value)
        form.add_field("file", PCM, filename="a.wav", content_type="audio/wav")
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{router.http.base_url}/audio/transcriptions",
                data=form,
                headers={"Authorization": "Bearer k-acme"},
            ) as answer,
        ):
            assert answer.status == 400
            assert expected in (await answer.json())["error"]["message"]
