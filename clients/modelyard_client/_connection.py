"""What a client holds whatever carries its calls: the router's address, each call's deadline, its metadata."""

from __future__ import annotations

from modelyard_client._channel import Metadata, metadata, resolve_address, resolve_api_key
from modelyard_client._trace import with_trace


class Connection:
    """Shared by `Client` and `AsyncClient` (their docstrings say what the arguments mean)."""

    def __init__(self, address: str | None, api_key: str | None, timeout: float | None) -> None:
        self.address = resolve_address(address)
        self.timeout = timeout
        self._metadata = metadata(resolve_api_key(api_key))

    def _call_metadata(self) -> Metadata:
        """Read at each call: the trace headers are those of the span current where the call is made."""
        return with_trace(self._metadata)
