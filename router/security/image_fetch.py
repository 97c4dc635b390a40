"""The router fetches image URLs itself and sends the bytes on, so no backend follows a URL into the network.

A self-hosted upstream (vLLM, an OpenAI-compatible server) fetches image URLs from inside the operator's
network and follows redirects, so even a public https URL could redirect it to http://169.254.169.254. Here
every hop is checked before it is dialed: its scheme and host by core.input_size.check_image_url (IP literals
included), and every address its name resolves to by the connector's resolver, so the address checked is the
address dialed (no second lookup for a rebinding DNS server to answer differently). The body is capped by
what is left of input.max_image_bytes and the whole fetch by input.image_fetch_timeout_s.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urljoin

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from modelyard.v1 import inference_pb2 as pb

from core.errors import InvalidArgument
from core.input_limits import InputLimits
from core.input_size import check_image_url
from core.url_policy import address_allowed

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 << 10


class _Refused(OSError):
    """A name resolved to an address image URLs may not reach."""


class _PolicyResolver(AbstractResolver):
    """The system resolver, refusing a name when any address it resolves to is not allowed."""

    def __init__(self, limits: InputLimits) -> None:
        self._inner = DefaultResolver()
        self._limits = limits

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            ip = ipaddress.ip_address(result["host"].split("%", 1)[0])
            if not address_allowed(ip, self._limits.image_url_allow_private, self._limits.image_url_networks):
                raise _Refused(
                    f"{host!r} resolves to {ip}, a loopback, private, link-local or metadata address"
                )
        return results

    async def close(self) -> None:
        await self._inner.close()


def _url_images(request: pb.ChatRequest) -> list[tuple[str, pb.Image]]:
    return [
        (f"messages[{i}].content[{j}].image.url", part.image)
        for i, message in enumerate(request.messages)
        for j, part in enumerate(message.content)
        if part.HasField("image") and part.image.HasField("url") and not part.image.url.startswith("data:")
    ]


async def inline_image_urls(request: pb.ChatRequest, limits: InputLimits) -> None:
    """Replace every http(s) image URL in `request` with the image's bytes (INVALID_ARGUMENT naming the field
    when a URL is refused or cannot be fetched). Call after validate_chat."""
    images = _url_images(request)
    if not images:
        return
    budget = limits.max_image_bytes - sum(
        len(part.image.data)
        for message in request.messages
        for part in message.content
        if part.HasField("image")
    )
    connector = aiohttp.TCPConnector(resolver=_PolicyResolver(limits), limit=4)
    async with aiohttp.ClientSession(
        connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar()
    ) as s:
        for field, image in images:
            try:
                async with asyncio.timeout(limits.image_fetch_timeout_s):
                    data, mime = await _fetch(s, image.url, field, budget, limits)
            except TimeoutError:
                raise InvalidArgument(
                    f"{field}: not fetched within input.image_fetch_timeout_s ({limits.image_fetch_timeout_s:g} s)"
                ) from None
            except aiohttp.ClientConnectorError as e:
                if isinstance(e.os_error, _Refused):
                    raise InvalidArgument(f"{field}: {e.os_error}; image URLs must be public") from None
                raise InvalidArgument(f"{field}: cannot connect to the image's host") from None
            except (aiohttp.ClientError, ValueError) as e:
                raise InvalidArgument(f"{field}: could not fetch the image ({type(e).__name__})") from None
            budget -= len(data)
            image.data = data  # replaces the url (one of)
            image.mime_type = mime


async def _fetch(
    session: aiohttp.ClientSession, url: str, field: str, budget: int, limits: InputLimits
) -> tuple[bytes, str]:
    for _hop in range(limits.image_max_redirects + 1):
        check_image_url(url, field, limits)  # every hop: scheme, host allow-list, IP literals
        async with session.get(url, allow_redirects=False, headers={"Accept": "image/*"}) as answer:
            if answer.status in _REDIRECTS and "Location" in answer.headers:
                url = urljoin(url, answer.headers["Location"])
                continue
            if answer.status != 200:
                raise InvalidArgument(f"{field}: fetching the image answered HTTP {answer.status}")
            mime = answer.content_type
            if not mime.startswith("image/"):
                raise InvalidArgument(f"{field}: the URL holds {mime!r}, not an image")
            return await _read_capped(answer, field, budget), mime
    raise InvalidArgument(
        f"{field}: more than input.image_max_redirects ({limits.image_max_redirects}) redirects"
    )


async def _read_capped(answer: aiohttp.ClientResponse, field: str, budget: int) -> bytes:
    too_big = InvalidArgument(f"{field}: the image would take the request over input.max_image_bytes")
    if answer.content_length is not None and answer.content_length > budget:
        raise too_big
    body = bytearray()
    async for chunk in answer.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > budget:
            raise too_big
    return bytes(body)
