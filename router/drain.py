"""The drain before a router stops: clients move to another router without a single call refused.

grpc's own graceful stop (`server.stop(grace)`) sends GOAWAY but refuses every new call at once, and a call a
client sent just before the GOAWAY reached it is cancelled: the measured rolling restart lost 9-11 of 230.
So a stopping router first drains, with the server still running:

- readiness goes NOT_SERVING (router.readiness), so orchestrators and health-checking clients look elsewhere;
- the listening socket stops accepting, so a client that reconnects finds another router;
- every client connection has a bounded age (`shutdown.drain_s` x 0.7, set as grpc.max_connection_age_ms when
  the server is built), so each gets grpc's two-step GOAWAY within the window; a call that crosses it is
  still served, because the server itself is not shutting down;
- every call that still arrives is served.

Only then is the gate closed and the server stopped; by then no client has a connection to send on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket

log = logging.getLogger(__name__)

_FD_DIR = "/proc/self/fd"


def connection_options(max_age_ms: int) -> list[tuple[str, int]]:
    """Server options bounding a connection's age (0: unbounded, grpc's default). Calls running on a
    connection when it ages out keep running (grpc's default grace for them is unbounded)."""
    if max_age_ms <= 0:
        return []
    return [("grpc.max_connection_age_ms", max_age_ms)]


def stop_accepting(port: int) -> int:
    """Stop accepting new TCP connections on `port` while those open keep being served; returns how many
    listening sockets were closed to new connections.

    grpc has no call for this short of stopping the server, so the listening sockets are found among this
    process's descriptors and shut for reading: the kernel then refuses new connections, and grpc closes
    its acceptor (it logs "Closing acceptor. Failed accept4" once). Where descriptors cannot be listed (not
    Linux), nothing is closed and the drain relies on GOAWAY alone."""
    if not port or not os.path.isdir(_FD_DIR):
        return 0
    closed = 0
    for name in os.listdir(_FD_DIR):
        with contextlib.suppress(OSError, ValueError):
            if _shut_if_listening(int(name), port):
                closed += 1
    log.info("drain: stopped accepting connections on port %d (%d listening sockets)", port, closed)
    return closed


def _shut_if_listening(fd: int, port: int) -> bool:
    # A duplicate, so closing our socket object leaves grpc's descriptor open; shutdown acts on the socket
    # both share.
    copy = os.dup(fd)
    try:
        sock = socket.socket(fileno=copy)
    except OSError:
        os.close(copy)
        raise
    with sock:
        if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
            return False
        if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            return False
        if sock.getsockname()[1] != port:
            return False
        sock.shutdown(socket.SHUT_RD)
        return True
