"""What a client holds whatever carries its calls: the router's address, each call's deadline, its metadata.

`Client` and `AsyncClient` take the same arguments (their docstrings say what they mean); each opens its
channel its own way in `_open`.
"""

from __future__ import annotations

from typing import TypeVar

from modelyard_client._channel import Metadata, Tls, metadata, resolve_address, resolve_api_key
from modelyard_client._trace import with_trace

# A call's request, its response message, and what the client makes of it: for the clients' send helpers.
Req = TypeVar("Req")
Resp = TypeVar("Resp")
Out = TypeVar("Out")


class Connection:
    def __init__(
        self,
        address: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | None = None,
        tls: Tls | None = None,
    ) -> None:
        self.address = resolve_address(address)
        self.timeout = timeout
        self._metadata = metadata(resolve_api_key(api_key))
        self._open(tls)

    def _open(self, tls: Tls | None) -> None:
        raise NotImplementedError

    def _call_metadata(self) -> Metadata:
        """Read at each call: the trace headers are those of the span current where the call is made."""
        return with_trace(self._metadata)
