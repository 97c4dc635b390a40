"""AdminClient: runtime control of a router (backends, strategy, cost comparison, worker drain).

Returns the protobuf messages as they are: admin output is for operators and scripts, and the
messages are typed and documented in proto/modelyard/v1/admin.proto.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

import grpc
from modelyard.v1 import admin_pb2, admin_pb2_grpc, router_pb2

from modelyard_client import _requests
from modelyard_client._channel import Tls, metadata, resolve_address, resolve_api_key, sync_channel
from modelyard_client._errors import from_rpc_error
from modelyard_client._trace import with_trace


class AdminClient:
    def __init__(
        self,
        address: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | None = 30.0,
        tls: Tls | None = None,
    ):
        self.address = resolve_address(address)
        self.timeout = timeout
        self._metadata = metadata(resolve_api_key(api_key))
        self._channel = sync_channel(self.address, tls)
        self._stub: Any = admin_pb2_grpc.AdminServiceStub(self._channel)  # generated stubs are untyped

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self._stub, method)(
                request, timeout=self.timeout, metadata=with_trace(self._metadata)
            )
        except grpc.RpcError as e:
            raise from_rpc_error(e) from e

    def update_backend(
        self, backend: str, *, enabled: bool | None = None, priority: int | None = None
    ) -> router_pb2.BackendStatus:
        request = admin_pb2.UpdateBackendRequest(backend=backend)
        if enabled is not None:
            request.enabled = enabled
        if priority is not None:
            request.priority = priority
        result: admin_pb2.UpdateBackendResponse = self._call("UpdateBackend", request)
        return result.backend

    def set_strategy(
        self, strategy: str | None = None, weights: Mapping[str, float] | None = None, *, reset: bool = False
    ) -> admin_pb2.SetStrategyResponse:
        """Make `strategy` the default and/or change the named weights (the others stay; `reset` restores the
        built-in weights first)."""
        request = admin_pb2.SetStrategyRequest(
            strategy=_requests.strategy_value(strategy), weights=dict(weights or {}), reset_weights=reset
        )
        result: admin_pb2.SetStrategyResponse = self._call("SetStrategy", request)
        return result

    def compare_cost(
        self, prompt: str, *, model: str = "auto", max_tokens: int | None = None
    ) -> admin_pb2.CompareCostResponse:
        request = _requests.chat_request(
            prompt,
            model=model,
            system=None,
            temperature=None,
            top_p=None,
            max_tokens=max_tokens,
            stop=None,
            seed=None,
            provider=None,
            strategy=None,
            max_cost_usd=None,
            task=None,
            request_id=None,
        )
        result: admin_pb2.CompareCostResponse = self._call(
            "CompareCost", admin_pb2.CompareCostRequest(chat=request)
        )
        return result

    def drain_worker(self, worker_id: str, reason: str = "") -> bool:
        request = admin_pb2.DrainWorkerRequest(worker_id=worker_id, reason=reason)
        return bool(self._call("DrainWorker", request).draining)

    def audit_events(
        self, *, days: int = 1, tenant: str | None = None, limit: int = 100
    ) -> list[admin_pb2.AuditEvent]:
        """Admin calls made on the router, newest first (tenant, method, arguments, outcome)."""
        request = admin_pb2.ListAuditEventsRequest(days=days, tenant=tenant or "", limit=limit)
        return list(self._call("ListAuditEvents", request).events)
