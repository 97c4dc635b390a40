"""How the router calls a worker: TLS with the workers' CA (and its own certificate for mutual TLS) when
configured, and the shared worker token on every call, so a worker can refuse anyone else."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import grpc

from core.tls import ChannelTls
from core.worker_token import token_metadata
from router.config.settings import RouterConfig
from router.security.listeners import stream_window

_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
]


class _Stamp:
    """The certificate files' stamp, looked at again at most every `recheck_s`: every request asks, and a
    stat of each file on each request was the router's only system calls on the request path besides I/O."""

    def __init__(self, recheck_s: float) -> None:
        self.recheck_s = recheck_s
        self._value: object = None
        self._next = 0.0

    def of(self, tls: ChannelTls) -> object:
        now = time.monotonic()
        if now >= self._next:
            self._value, self._next = tls.stamp(), now + self.recheck_s
        return self._value


@dataclass(frozen=True)
class WorkerDialer:
    tls: ChannelTls | None = None
    token: str = field(default="", repr=False)
    # Renewed certificate files are picked up within this long (new channels; calls on the old one finish).
    _stamp: _Stamp = field(default_factory=lambda: _Stamp(1.0), repr=False, compare=False)
    # Channel options beyond the message sizes: the router's fixed stream window, so a channel to a worker
    # sends no BDP pings either. gRPC pings a connection on its reads; with a thousand workers each answer
    # comes on a connection of its own, and each would cost a ping and its ack at both ends.
    options: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def from_config(cls, config: RouterConfig) -> WorkerDialer:
        workers = config.workers
        tls = None
        if workers.tls_ca:
            tls = ChannelTls(
                ca=workers.tls_ca,
                cert=workers.tls_cert or config.tls_cert,
                key=workers.tls_key or config.tls_key,
                server_name=workers.tls_server_name,
            )
        return cls(
            tls=tls, token=workers.token, options=tuple(stream_window(config.grpc_stream_window_bytes))
        )

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return token_metadata(self.token)

    def stamp(self) -> object:
        """Changes when the certificate files do: a long-lived channel is then replaced."""
        return self._stamp.of(self.tls) if self.tls else None

    def channel(self, address: str) -> grpc.aio.Channel:
        options = [*_OPTIONS, *self.options]
        if self.tls is None:
            return grpc.aio.insecure_channel(address, options=options)
        return grpc.aio.secure_channel(address, self.tls.credentials(), options=options + self.tls.options())
