"""Which CA signed a registering peer's certificate: workers.tls_ca, not the clients' CA.

When workers register on the client listener under mutual TLS, that listener trusts both tls_client_ca and
workers.tls_ca, so the handshake alone cannot tell a client's certificate from a worker's. Register asks this
module which one signed the peer's certificate. The CA file is read on each registration (a few KB; workers
register rarely) so a rotated CA counts at once, as the listener's own does.

One CA for both clients and workers cannot be told apart at all: check_distinct_cas refuses that at start
unless a worker token or a registry listener of its own separates them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes

from core.errors import PermissionDenied, Unavailable
from core.tls import TlsConfigError
from router.config.settings import RouterConfig

_CERT = "x509_pem_cert"
_CHAIN = "x509_pem_cert_chain"
_MAX_DEPTH = 8  # intermediates a worker may present between its certificate and workers.tls_ca


def _certificates(path: str, setting: str = "workers.tls_ca") -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(Path(path).expanduser().read_bytes())
    except (OSError, ValueError) as e:
        raise TlsConfigError(f"{setting}: cannot read {path}: {e}") from e


def check_distinct_cas(config: RouterConfig) -> None:
    """Refuse one CA trusted for both clients and workers on one listener with no worker token: any client
    certificate would then register workers and receive every tenant's prompts."""
    if not (config.tls_client_ca and config.workers.tls_ca) or config.registry_listen or config.workers.token:
        return
    clients = {c.fingerprint(hashes.SHA256()) for c in _certificates(config.tls_client_ca, "tls_client_ca")}
    workers = {c.fingerprint(hashes.SHA256()) for c in _certificates(config.workers.tls_ca)}
    if clients & workers:
        raise TlsConfigError(
            "tls_client_ca and workers.tls_ca: the same CA signs clients and workers, so a client certificate "
            "could register workers; set a worker token (workers.token_file) or registry_listen"
        )


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _peer_chain(context: grpc.aio.ServicerContext[Any, Any]) -> list[x509.Certificate]:
    """The peer's certificate first, then any intermediates it presented."""
    auth = context.auth_context()
    leaf = auth.get(_CERT) or []
    chain = auth.get(_CHAIN) or []
    certs: list[x509.Certificate] = []
    for pem in [*leaf, *chain]:
        try:
            certs.extend(x509.load_pem_x509_certificates(pem))
        except ValueError:
            continue
    return certs


def check_worker_issuer(context: grpc.aio.ServicerContext[Any, Any], tls_ca: str) -> None:
    """PERMISSION_DENIED unless the peer's certificate chains up to a certificate in `tls_ca`."""
    chain = _peer_chain(context)
    if not chain:
        raise PermissionDenied("registration needs a worker certificate signed by workers.tls_ca")
    try:
        anchors = _certificates(tls_ca)
    except TlsConfigError as e:  # mid-rotation or removed: refuse now, the worker retries
        raise Unavailable(f"cannot check the worker's certificate now: {e}") from None
    cert = chain[0]
    for _ in range(_MAX_DEPTH):
        if any(_issued_by(cert, ca) for ca in anchors):
            return
        parent = next((c for c in chain[1:] if c != cert and _issued_by(cert, c)), None)
        if parent is None:
            break
        cert = parent
    raise PermissionDenied(
        "the peer's certificate was not issued by workers.tls_ca: only workers may register"
    )
