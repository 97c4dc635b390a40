"""A listener that cannot bind, said in one line: which setting (flag and config key) and which address.

gRPC reports only "Failed to bind to address" and a socket its errno inside a traceback; an operator who ran
`make run` twice needs to know which flag to change. The reason comes from binding a plain socket to the same
address, which gives the operating system's own words ("Address already in use").
"""

from __future__ import annotations

import os
import socket

from core.addresses import bind_host_port


class ListenError(OSError):
    def __init__(self, setting: str, address: str, reason: str) -> None:
        flag = "--" + setting.replace("_", "-")
        super().__init__(f"cannot listen on {address} ({flag}, config {setting}): {reason}")


def why_not(address: str) -> str | None:
    """Why `address` cannot be bound now, in the operating system's words; None when a plain socket can.

    Asked before gRPC binds: gRPC sets SO_REUSEPORT, so a second router on a port another gRPC server holds
    would share it silently, and on a plain failure gRPC's core logs a line of its own.
    """
    try:
        host, port = bind_host_port(address)
        if port == 0:
            return None
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.create_server((host, port), family=family):
            pass
    except OSError as error:
        return reason(error)
    except ValueError as error:
        return str(error)
    return None


def reason(error: OSError) -> str:
    """The operating system's words for `error`, without Python's "(while attempting to bind on ...)"."""
    return os.strerror(error.errno) if error.errno else str(error)
