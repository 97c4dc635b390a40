"""API keys: who is calling. `authorization: Bearer <key>` metadata, checked against salted SHA-256 hashes.

API keys are long random strings, so one salted SHA-256 is enough (a slow KDF guards weak passwords,
and would cost every request). Each configured hash is compared in constant time, all of them on
every miss, so timing tells nothing about which entry came close. Keys are never logged.
With no keys configured the router runs open and every caller is the tenant "local", an admin only when the
router listens on loopback (elsewhere it must be started with allow_open, and Admin stays closed).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import yaml

from core.errors import PermissionDenied, StatusError, Unauthenticated
from core.interceptors import ScopedInterceptor, refusal, refusal_unread, service_of
from router.config.accounting import OPEN_TENANT, ApiKey, parse_keys

log = logging.getLogger(__name__)
_PREFIX = "sha256"
_RECENT_MAX = 4096  # verified keys remembered, so a known key costs one hash instead of one per entry


def hash_key(key: str, salt: bytes | None = None) -> str:
    """The value to configure as key_sha256: "sha256$<salt hex>$<sha256(salt + key) hex>"."""
    salt = secrets.token_bytes(16) if salt is None else salt
    return f"{_PREFIX}${salt.hex()}${hashlib.sha256(salt + key.encode()).hexdigest()}"


def _parse(stored: str) -> tuple[bytes, bytes]:
    prefix, salt, digest = stored.split("$")
    if prefix != _PREFIX:
        raise ValueError(f"unknown key hash scheme {prefix!r}")
    return bytes.fromhex(salt), bytes.fromhex(digest)


def load_keys(keys: Sequence[ApiKey], keys_file: str) -> list[ApiKey]:
    """The configured keys plus those in keys_file (a YAML list, or `keys: [...]`)."""
    out = list(keys)
    if keys_file:
        try:
            raw = yaml.safe_load(Path(keys_file).expanduser().read_text())
        except (OSError, yaml.YAMLError) as e:
            raise ValueError(f"keys_file {keys_file}: {e}") from e
        out.extend(parse_keys(raw or [], f"keys_file {keys_file}"))
    return out


@dataclass(frozen=True)
class Caller:
    tenant: str
    admin: bool
    priority: str = "standard"  # the key's admission band (router.routing.admission)


class Authenticator:
    def __init__(self, keys: Sequence[ApiKey], open_admin: bool = True) -> None:
        self._open_admin = open_admin  # with no keys: whether the open caller may use Admin
        self._entries = []
        for key in keys:
            try:
                salt, digest = _parse(key.key_sha256)
            except ValueError as e:  # the message names the tenant, never the hash
                raise ValueError(f"keys: tenant {key.tenant}: key_sha256 is not a hash-key value") from e
            self._entries.append((Caller(key.tenant, key.admin, key.priority), salt, digest))
        self._recent: dict[bytes, Caller] = {}

    @property
    def open(self) -> bool:
        return not self._entries

    def describe(self) -> str:
        if self.open:
            admin = "an admin" if self._open_admin else "not an admin (the listener is not loopback)"
            return (
                f"no API keys configured: the router is open, every caller is tenant {OPEN_TENANT!r}, {admin}"
            )
        tenants = sorted({caller.tenant for caller, _, _ in self._entries})
        return f"{len(self._entries)} API key(s) for tenant(s) {', '.join(tenants)}"

    def authenticate(self, metadata: Iterable[tuple[str, Any]] | None) -> Caller:
        """The caller behind the request's key; raises Unauthenticated for a missing or unknown one."""
        if self.open:
            return Caller(OPEN_TENANT, admin=self._open_admin)
        token = _bearer(metadata)
        if token is None:
            # One message for both doors: gRPC metadata and HTTP headers carry it the same way.
            raise Unauthenticated("missing API key: send 'authorization: Bearer <key>'")
        fingerprint = hashlib.sha256(token.encode()).digest()
        caller = self._recent.get(fingerprint)
        if caller is None:
            caller = self._match(token)
            if caller is None:
                raise Unauthenticated("invalid API key")
            if len(self._recent) >= _RECENT_MAX:
                self._recent.clear()
            self._recent[fingerprint] = caller
        return caller

    def _match(self, token: str) -> Caller | None:
        found: Caller | None = None
        encoded = token.encode()
        for caller, salt, digest in self._entries:  # no early exit: every entry costs the same
            if hmac.compare_digest(hashlib.sha256(salt + encoded).digest(), digest):
                found = caller
        return found


def _bearer(metadata: Iterable[tuple[str, Any]] | None) -> str | None:
    for name, value in metadata or ():
        if name == "authorization":
            text = value.decode() if isinstance(value, bytes) else str(value)
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


if TYPE_CHECKING:  # generic only in the type stubs
    Handler = grpc.RpcMethodHandler[Any, Any]


class AuthInterceptor(ScopedInterceptor):
    """Refuse calls to client-facing services without a valid key, before any servicer runs.

    Worker registration, health and reflection are left alone: workers and probes carry no API key.
    """

    def __init__(self, auth: Authenticator, protected: Collection[str], admin_only: Collection[str]) -> None:
        super().__init__(protected)
        self._auth = auth
        self._admin_only = frozenset(admin_only)

    def scoped(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        service = service_of(details.method)
        try:
            caller = self._auth.authenticate(details.invocation_metadata)
            if service in self._admin_only and not caller.admin:
                raise PermissionDenied(f"tenant {caller.tenant}: {service} needs an admin key")
        except Unauthenticated as e:
            log.info("refused %s: %s", details.method, e.message)
            return refusal_unread(handler, e)  # no key: the request is never read
        except StatusError as e:
            log.info("refused %s: %s", details.method, e.message)
            return refusal(handler, e)
        return handler
