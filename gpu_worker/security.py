"""The worker's credentials: what it shows the router when registering, and what it asks of callers.

- A shared token (MODELYARD_WORKER_TOKEN or --worker-token-file): sent with Register, required on the
  Worker service.
- TLS: --tls-cert/--tls-key serve the Worker service over TLS and are the worker's client certificate
  towards the router; --tls-ca is the CA that signed the router's certificate: the worker dials the router
  over TLS with it and, with a certificate of its own, requires the router's client certificate too (mTLS).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc

from core.network import is_loopback
from core.tls import ChannelTls, ServerTls
from core.worker_token import token_metadata


class ExposureError(ValueError):
    pass


@dataclass(frozen=True)
class WorkerSecurity:
    token: str = field(default="", repr=False)
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    # The name to check in routers' certificates. Workers dial the addresses behind --router (a headless
    # Service's pod IPs), which a certificate seldom names; the Service's DNS name it does.
    tls_server_name: str = ""

    def __post_init__(self) -> None:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("--tls-cert and --tls-key: give both or neither")

    @property
    def mutual_tls(self) -> bool:
        return bool(self.tls_cert and self.tls_ca)

    @property
    def authenticates_callers(self) -> bool:
        return bool(self.token) or self.mutual_tls

    def check_exposure(self, listen: str, allow_open: bool) -> None:
        """A worker reachable from other machines must know who calls it: prompts arrive here."""
        if allow_open or is_loopback(listen) or self.authenticates_callers:
            return
        raise ExposureError(
            f"--listen {listen}: refusing to serve the Worker service beyond loopback with no credentials, "
            "since anyone could send it requests. Set MODELYARD_WORKER_TOKEN (or --worker-token-file), or "
            "--tls-cert/--tls-key with --tls-ca for mutual TLS; or pass --allow-open if that is what you want."
        )

    def server_tls(self) -> ServerTls | None:
        if not self.tls_cert:
            return None
        return ServerTls(self.tls_cert, self.tls_key, (self.tls_ca,) if self.tls_ca else ())

    def router_tls(self) -> ChannelTls | None:
        if not self.tls_ca:
            return None
        return ChannelTls(
            ca=self.tls_ca, cert=self.tls_cert, key=self.tls_key, server_name=self.tls_server_name
        )

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return token_metadata(self.token)

    def router_channel(self, address: str) -> grpc.aio.Channel:
        """A channel for one registration session; made anew per session, so rotated files are read then.
        A connection of its own (a local subchannel pool): a new session never rides a connection an earlier
        one broke on, and many workers hosted in one process (bench.pool_host) look to the router like the
        separate machines they stand for."""
        options: list[tuple[str, str | int]] = [("grpc.use_local_subchannel_pool", 1)]
        tls = self.router_tls()
        if tls is None:
            return grpc.aio.insecure_channel(address, options=options)
        return grpc.aio.secure_channel(address, tls.credentials(), options=[*options, *tls.options()])
