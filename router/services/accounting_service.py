"""The Accounting service: usage statistics from the ledger.

A tenant sees its own usage; an admin key (or anyone, on an open router) may name any tenant or,
with none named, see every tenant together.
"""

from __future__ import annotations

import time
from typing import Any

import grpc
from modelyard.v1 import accounting_pb2, accounting_pb2_grpc

from core import wire
from core.errors import FailedPrecondition, PermissionDenied, Unavailable
from core.grpc_status import grpc_status
from router.accounting.auth import Authenticator
from router.accounting.ledger.records import UsageRow
from router.accounting.ledger.writer import LedgerWriter

Context = grpc.aio.ServicerContext[Any, Any]
_MAX_DAYS = 3660
_DAY_S = 86_400


class AccountingServicer(accounting_pb2_grpc.AccountingServiceServicer):  # type: ignore[misc]
    def __init__(self, auth: Authenticator, writer: LedgerWriter | None) -> None:
        self._auth = auth
        self._writer = writer

    @grpc_status
    async def GetUsage(
        self, request: accounting_pb2.GetUsageRequest, context: Context
    ) -> accounting_pb2.GetUsageResponse:
        caller = self._auth.authenticate(context.invocation_metadata())
        tenant = request.tenant or (None if caller.admin else caller.tenant)
        if tenant not in (None, caller.tenant) and not caller.admin:
            raise PermissionDenied(f"tenant {caller.tenant}: may not read tenant {tenant}'s usage")
        if self._writer is None:
            raise FailedPrecondition("the usage ledger is off on this router")
        days = min(request.days or 1, _MAX_DAYS)
        since = time.time() - days * _DAY_S
        # Records of requests that just ended may still be queued; a short wait makes them count.
        await self._writer.flush(timeout=5.0)
        try:
            rows = await self._writer.store.usage(since, tenant)
        except Exception as e:  # the store is down: say so, the router itself is fine
            raise Unavailable(f"usage ledger unavailable: {e}") from e
        return accounting_pb2.GetUsageResponse(
            rows=[_to_proto(row) for row in rows],
            days=days,
            tenant=tenant or "",
            since=wire.timestamp_s(since),
        )


def _to_proto(row: UsageRow) -> accounting_pb2.UsageRow:
    return accounting_pb2.UsageRow(
        backend=row.backend,
        model=row.model,
        calls=row.calls,
        success_rate=row.success_rate,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        audio_seconds=row.audio_seconds,
        cost_usd=row.cost_usd,
        latency_p50_ms=row.latency_p50_ms,
        latency_p95_ms=row.latency_p95_ms,
        latency_p99_ms=row.latency_p99_ms,
        ttft_p50_ms=row.ttft_p50_ms,
        cache_hits=row.cache_hits,
    )
