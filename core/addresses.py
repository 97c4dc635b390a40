"""host:port addresses: where a server listens versus where a peer dials it."""

from __future__ import annotations

# Listening on these means "every interface"; nobody can dial them.
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})
LOCALHOST = "127.0.0.1"


def dial_address(listen: str, port: int, *, wildcard_host: str = LOCALHOST) -> str:
    """The address to dial a server that listens on `listen` and bound `port` (useful with port 0).

    A wildcard listen host becomes `wildcard_host`: 127.0.0.1 for a peer on this machine, the machine's
    name for a peer elsewhere.
    """
    host = listen.rpartition(":")[0]
    if host in WILDCARD_HOSTS:
        host = wildcard_host
    return f"{host}:{port}"


def bind_host_port(listen: str) -> tuple[str, int]:
    """(host, port) to bind a plain socket to: brackets off an IPv6 host, and no host meaning every interface."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)
