"""Whether a listen address or a peer is this machine only: plaintext without credentials is allowed there."""

from __future__ import annotations

import ipaddress

_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})


def host_of(address: str) -> str:
    """The host part of host:port or [v6]:port."""
    host = address.rsplit(":", 1)[0] if address.count(":") == 1 or address.startswith("[") else address
    return host.strip("[]")


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; False for wildcards (0.0.0.0, [::]) and anything else."""
    host = host_of(address)
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
