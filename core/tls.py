"""TLS credentials from PEM files, for servers and channels alike, re-read when the files change.

Servers use grpc's dynamic SSL credentials: grpc asks for the certificate configuration before each new
handshake, and a changed file (cert-manager rotates them in place) is picked up then, without a restart.
Channels read their files when they are made; long-lived ones ask `ChannelTls.changed()` to know when to
make a new channel.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import grpc

log = logging.getLogger(__name__)

CA_ENV = "MODELYARD_TLS_CA"
CERT_ENV = "MODELYARD_TLS_CERT"
KEY_ENV = "MODELYARD_TLS_KEY"
SERVER_NAME_ENV = "MODELYARD_TLS_SERVER_NAME"


class TlsConfigError(ValueError):
    """A certificate, key or CA setting that cannot be used; the message names the setting."""


def _read(path: str, what: str) -> bytes:
    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as e:
        raise TlsConfigError(f"{what}: cannot read {path}: {e.strerror or e}") from e
    if b"-----BEGIN" not in data:
        raise TlsConfigError(f"{what}: {path} is not a PEM file")
    return data


def file_stamp(paths: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """What identifies a version of the files: modification time and size (unreadable: (-1, -1))."""
    out = []
    for path in paths:
        try:
            stat = os.stat(Path(path).expanduser())
            out.append((stat.st_mtime_ns, stat.st_size))
        except OSError:
            out.append((-1, -1))
    return tuple(out)


@dataclass(frozen=True)
class ServerTls:
    """A server's certificate and key; with client_ca, every caller must present a certificate it signed."""

    cert: str
    key: str
    client_ca: tuple[str, ...] = ()  # one or more CA files; their certificates are trusted together

    def credentials(self) -> grpc.ServerCredentials:
        source = _ServerCertificates(self)
        return grpc.dynamic_ssl_server_credentials(
            source.load(),
            source.fetch,  # type: ignore[arg-type]  # grpc documents None as "no change"; the stubs miss it
            require_client_authentication=bool(self.client_ca),
        )


class _ServerCertificates:
    def __init__(self, tls: ServerTls) -> None:
        self._tls = tls
        self._paths = (tls.cert, tls.key, *tls.client_ca)
        self._stamp = file_stamp(self._paths)

    def load(self) -> grpc.ServerCertificateConfiguration:
        key = _read(self._tls.key, "tls_key")
        cert = _read(self._tls.cert, "tls_cert")
        roots = b"".join(_read(path, "tls_client_ca") for path in self._tls.client_ca) or None
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=roots)

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """Called by grpc before each handshake: a new configuration when a file changed, else None."""
        stamp = file_stamp(self._paths)
        if stamp == self._stamp:
            return None
        try:
            config = self.load()
        except TlsConfigError as e:  # half-written during a rotation: keep serving the old one, retry later
            log.warning("keeping the current certificate: %s", e)
            return None
        self._stamp = stamp
        log.info("certificate files changed: serving the new certificate")
        return config


@dataclass(frozen=True)
class ChannelTls:
    """What a client needs for TLS: the CA that signed the server's certificate (empty: the system's
    roots), and for mutual TLS its own certificate and key."""

    ca: str = ""
    cert: str = ""
    key: str = ""
    server_name: str = ""  # the name to check the server's certificate against, when not the dialed host

    def __post_init__(self) -> None:
        if bool(self.cert) != bool(self.key):
            raise TlsConfigError("tls_cert and tls_key: give both or neither")

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca, "tls_ca") if self.ca else None,
            private_key=_read(self.key, "tls_key") if self.key else None,
            certificate_chain=_read(self.cert, "tls_cert") if self.cert else None,
        )

    def options(self) -> list[tuple[str, str]]:
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []

    def stamp(self) -> tuple[tuple[int, int], ...]:
        """Changes when any of the files changes: time to make a new channel."""
        return file_stamp(tuple(p for p in (self.ca, self.cert, self.key) if p))


def channel_tls_from_env(
    ca: str | None = None, cert: str | None = None, key: str | None = None
) -> ChannelTls | None:
    """The arguments, else MODELYARD_TLS_CA / _CERT / _KEY; None when none is set (plaintext)."""
    ca = os.environ.get(CA_ENV, "") if ca is None else ca
    cert = os.environ.get(CERT_ENV, "") if cert is None else cert
    key = os.environ.get(KEY_ENV, "") if key is None else key
    if not (ca or cert or key):
        return None
    return ChannelTls(ca=ca, cert=cert, key=key)


def secure_or_insecure_aio_channel(
    address: str, tls: ChannelTls | None, options: list[tuple[str, object]] | None = None
) -> grpc.aio.Channel:
    opts = list(options or [])
    if tls is None:
        return grpc.aio.insecure_channel(address, options=opts)
    return grpc.aio.secure_channel(address, tls.credentials(), options=opts + tls.options())
