"""Which addresses an image URL may reach: public ones only, unless the config lets private networks in.

Backends and workers fetch image URLs from inside the operator's network, so a URL naming 127.0.0.1, 10.x,
the cloud metadata address (169.254.169.254, fd00:ec2::254) or a cluster-internal name would read what the
caller cannot reach themselves. IPv6 forms that embed an IPv4 address (::ffff:a.b.c.d, 64:ff9b::a.b.c.d,
6to4) are judged by the IPv4 address they carry.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names that only mean something inside a network: Kubernetes Services, mDNS, cloud metadata.
_INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".svc", ".cluster.local", ".home.arpa", ".lan")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def embedded_ipv4(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4), else the address itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if ip.sixtofour is not None:
            return ip.sixtofour
    return ip


def address_allowed(ip: IPAddress, allow_private: bool, networks: Sequence[str]) -> bool:
    """Public unicast addresses; others only when allow_private, or inside one of `networks` (CIDRs)."""
    if allow_private:
        return True
    ip = embedded_ipv4(ip)
    if any(ip in ipaddress.ip_network(net, strict=False) for net in networks):
        return True
    return ip.is_global and not ip.is_multicast


def internal_name(host: str) -> bool:
    """A name with no dot (localhost, metadata) or an internal suffix (kubernetes.default.svc)."""
    host = host.lower().rstrip(".")
    return "." not in host or host.endswith(_INTERNAL_SUFFIXES)


def literal_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
