"""How the router calls a worker: TLS with the workers' CA (and its own certificate for mutual TLS) when
configured, and the shared worker token on every call, so a worker can refuse anyone else."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc

from core.tls import ChannelTls
from core.worker_token import token_metadata
from router.config.settings import RouterConfig

_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
]


@dataclass(frozen=True)
class WorkerDialer:
    tls: ChannelTls | None = None
    token: str = field(default="", repr=False)

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
        return cls(tls=tls, token=workers.token)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return token_metadata(self.token)

    def stamp(self) -> object:
        """Changes when the certificate files do: a long-lived channel is then replaced."""
        return self.tls.stamp() if self.tls else None

    def channel(self, address: str) -> grpc.aio.Channel:
        if self.tls is None:
            return grpc.aio.insecure_channel(address, options=_OPTIONS)
        return grpc.aio.secure_channel(address, self.tls.credentials(), options=_OPTIONS + self.tls.options())
