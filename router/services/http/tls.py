"""TLS for the HTTP door from the router's own settings (tls_cert, tls_key, tls_client_ca), the same files the
gRPC listener serves, and re-read when they change, as gRPC does (cert-manager rotates them in place).

The listening socket keeps the SSLContext it was made with, and loading files into that context only adds:
a CA removed from tls_client_ca would stay trusted. So each reload builds a whole new context, and the
listener's own context only hands every handshake to the newest one (its SNI callback, which OpenSSL calls
for every ClientHello, with or without a server name).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

from core.tls import TlsConfigError, file_stamp
from router.config.settings import RouterConfig

log = logging.getLogger(__name__)
RELOAD_CHECK_S = 10.0  # how often the files' modification times are compared


class DoorTls:
    def __init__(self, config: RouterConfig) -> None:
        self._cert, self._key, self._client_ca = config.tls_cert, config.tls_key, config.tls_client_ca
        self._paths = tuple(p for p in (self._cert, self._key, self._client_ca) if p)
        self._current = self._build()  # now: a missing or bad file stops the router before it binds anything
        self._stamp = file_stamp(self._paths)
        # What the listener holds: the same settings, and a hand-over to the current context per handshake.
        self.context = self._build()
        self.context.sni_callback = self._hand_over

    def _hand_over(self, connection: ssl.SSLObject, _name: str | None, _context: ssl.SSLContext) -> None:
        connection.context = self._current

    def _build(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(Path(self._cert).expanduser(), Path(self._key).expanduser())
            if self._client_ca:
                context.load_verify_locations(Path(self._client_ca).expanduser())
                context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS, as on the gRPC listener
        except (OSError, ssl.SSLError) as e:
            raise TlsConfigError(f"tls_cert/tls_key/tls_client_ca: {e}") from e
        return context

    async def watch(self) -> None:
        """Until cancelled: a new context when a file changed; new connections get it."""
        while True:
            await asyncio.sleep(RELOAD_CHECK_S)
            stamp = file_stamp(self._paths)
            if stamp == self._stamp:
                continue
            try:
                self._current = self._build()
            except TlsConfigError as e:  # half-written during a rotation: keep the old one, try again later
                log.warning("HTTP door: keeping the current certificate: %s", e)
                continue
            self._stamp = stamp
            log.info("HTTP door: certificate files changed; serving the new certificate")
