"""Which routers to register with: `--router` values resolved to addresses, one stream per address.

A name may stand for several routers (a headless Kubernetes Service), so names are re-resolved periodically:
a new replica gets a stream within one interval, and a stream to an address that disappeared is closed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gpu_worker.registration import RegistrationStream

logger = logging.getLogger(__name__)

DEFAULT_ROUTER_PORT = 50051
DEFAULT_RESOLVE_INTERVAL_S = 30.0


@dataclass(frozen=True)
class RouterTarget:
    host: str
    port: int

    def __str__(self) -> str:
        return _join(self.host, self.port)


def parse_router_targets(values: Iterable[str]) -> list[RouterTarget]:
    """Parse repeated and/or comma-separated `--router` values: host:port, [v6]:port, dns:///name:port."""
    targets: list[RouterTarget] = []
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if item:
                target = _parse_one(item)
                if target not in targets:
                    targets.append(target)
    if not targets:
        raise ValueError("--router: no router address given")
    return targets


def _parse_one(text: str) -> RouterTarget:
    rest = text
    for prefix in ("dns:///", "dns://", "dns:"):
        if rest.startswith(prefix):
            rest = rest[len(prefix) :]
            break
    if rest.startswith("["):  # [v6]:port
        host, _, tail = rest[1:].partition("]")
        port_text = tail.removeprefix(":")
    elif rest.count(":") == 1:
        host, _, port_text = rest.partition(":")
    else:  # a bare name, or a bare IPv6 literal
        host, port_text = rest, ""
    if not host:
        raise ValueError(f"--router: {text!r} has no host")
    try:
        port = int(port_text) if port_text else DEFAULT_ROUTER_PORT
    except ValueError:
        raise ValueError(f"--router: {text!r} has a port that is not a number") from None
    return RouterTarget(host, port)


async def resolve(target: RouterTarget) -> list[str]:
    """All addresses behind a target, as host:port strings. IPv4 only when a name has both families, since
    `localhost` and dual-stack Services would otherwise register the worker twice with the same router."""
    try:
        ipaddress.ip_address(target.host)
        return [str(target)]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    v4 = sorted({str(info[4][0]) for info in infos if info[0] == socket.AF_INET})
    v6 = sorted({str(info[4][0]) for info in infos if info[0] == socket.AF_INET6})
    return [_join(host, target.port) for host in (v4 or v6)]


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class RouterPool:
    """Keeps exactly one RegistrationStream per router address currently behind the targets."""

    def __init__(
        self,
        targets: list[RouterTarget],
        stream_factory: Callable[[str], RegistrationStream],
        resolve_interval_s: float = DEFAULT_RESOLVE_INTERVAL_S,
    ) -> None:
        self._targets = targets
        self._stream_factory = stream_factory
        self._resolve_interval_s = resolve_interval_s
        self._known: dict[RouterTarget, list[str]] = {}
        self.streams: dict[str, RegistrationStream] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._refresh_forever(), name="router-pool")

    async def refresh(self) -> None:
        """Resolve every target; open streams to new addresses and close streams to vanished ones."""
        for target in self._targets:
            try:
                self._known[target] = await resolve(target)
            except OSError as error:
                # Keep what we had: a DNS hiccup must not drop the worker from routers that are still there.
                logger.warning(
                    "cannot resolve router %s (%s); keeping %s", target, error, self._known.get(target)
                )
        wanted = {address for addresses in self._known.values() for address in addresses}
        for address in sorted(wanted - self.streams.keys()):
            logger.info("registering with router at %s", address)
            stream = self._stream_factory(address)
            self.streams[address] = stream
            stream.start()
        for address in sorted(self.streams.keys() - wanted):
            logger.info("router %s is no longer behind %s; closing its stream", address, self._targets)
            await self.streams.pop(address).stop()

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._resolve_interval_s)
            await self.refresh()

    def report_now(self) -> None:
        for stream in self.streams.values():
            stream.report_now()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.gather(*(stream.stop() for stream in self.streams.values()))
        self.streams.clear()
