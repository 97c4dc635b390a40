"""Requests a web page in the user's browser cannot forge: the door's defence against cross-site requests.

A page the developer visits can POST to http://127.0.0.1:8080 as a "simple" request (text/plain, or a form)
without a CORS preflight, and a DNS-rebinding page can read the answers under its own name. So the door takes
JSON only as application/json and uploads only as multipart/form-data (neither can be sent cross-site without a
preflight this door never grants), and, with no API keys to stop strangers, answers only Host values that name
this machine (plus http_allowed_hosts).
"""

from __future__ import annotations

import functools
from collections.abc import Collection

from aiohttp import web

from core.network import is_loopback
from router.services.http.errors import HttpError, plain_error

UPLOAD_PATHS = frozenset({"/v1/audio/transcriptions"})


def host_name(host: str) -> str:
    """ "localhost:8080" -> "localhost", "[::1]:8080" -> "::1"."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def origin_refusal(request: web.Request, open_door: bool, allowed_hosts: Collection[str]) -> HttpError | None:
    """Why this request is refused before anything else runs, or None."""
    if open_door:
        name = host_name(request.host or "").lower().rstrip(".")
        if not _loopback_name(name) and name not in {h.lower().rstrip(".") for h in allowed_hosts}:
            return plain_error(
                403,
                f"Host: {name!r} is not this machine's name; with no API keys the door answers loopback names "
                "only (add others to http_allowed_hosts)",
                "permission_error",
            )
    return None


@functools.lru_cache(maxsize=64)
def _loopback_name(name: str) -> bool:
    """A client sends the same Host on every request: parsing it as an address each time was ~2% of the
    door's CPU per request."""
    return is_loopback(name)


def content_type_refusal(request: web.Request) -> HttpError | None:
    if request.method != "POST":
        return None
    expected = "multipart/form-data" if request.path in UPLOAD_PATHS else "application/json"
    if request.content_type != expected:
        return plain_error(415, f"Content-Type: expected {expected}, got {request.content_type!r}")
    return None
