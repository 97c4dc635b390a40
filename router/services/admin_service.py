"""The Admin service: change backends and strategy at run time; compare what a request would cost; read\nthe audit trail of Admin calls."""

from __future__ import annotations

import time
from typing import Any

import grpc
from modelyard.v1 import admin_pb2, admin_pb2_grpc
from modelyard.v1 import inference_pb2 as pb

from core import wire
from core.errors import InvalidArgument, NotFound
from core.grpc_status import grpc_status
from core.validation import validate_chat
from router.accounting.audit import MAX_LISTED, AuditTrail
from router.accounting.estimates import estimate_chat
from router.routing.backend_status import backend_status
from router.routing.scheduler import Scheduler
from router.routing.scoring.strategies import strategy_name
from router.routing.state import RoutingState
from router.services.worker_registry_service import WorkerRegistryServicer

Context = grpc.aio.ServicerContext[Any, Any]
MAX_AUDIT_DAYS = 3660


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):  # type: ignore[misc]
    def __init__(
        self,
        state: RoutingState,
        scheduler: Scheduler,
        workers: WorkerRegistryServicer,
        audit: AuditTrail | None = None,
    ) -> None:
        self._state = state
        self._scheduler = scheduler
        self._workers = workers
        self._audit = audit or AuditTrail(state.config.router_id, None)

    @grpc_status
    async def UpdateBackend(
        self, request: admin_pb2.UpdateBackendRequest, context: Context
    ) -> admin_pb2.UpdateBackendResponse:
        backend = self._state.registry.get(request.backend)
        if backend is None:
            known = ", ".join(sorted(b.id for b in self._state.registry)) or "none"
            raise NotFound(f"backend: no backend {request.backend!r}; known: {known}")
        settings = self._state.settings[backend]
        if request.HasField("enabled"):
            settings.enabled = request.enabled
        if request.HasField("priority"):
            settings.priority = request.priority
        self._state.registry.refresh(backend)  # in or out of rotation with the switch
        return admin_pb2.UpdateBackendResponse(backend=backend_status(backend, self._state))

    @grpc_status
    async def SetStrategy(
        self, request: admin_pb2.SetStrategyRequest, context: Context
    ) -> admin_pb2.SetStrategyResponse:
        strategies = self._state.strategies
        requested = strategy_name(request.strategy)
        name = requested or strategies.default
        if request.weights or request.reset_weights:
            strategies.update_weights(name, dict(request.weights), reset=request.reset_weights)
        if requested:
            strategies.default = strategies.check(requested)
        return admin_pb2.SetStrategyResponse(
            strategy=wire.strategy(strategies.default), weights=strategies.weights(name)
        )

    @grpc_status
    async def CompareCost(
        self, compare: admin_pb2.CompareCostRequest, context: Context
    ) -> admin_pb2.CompareCostResponse:
        request = compare.chat
        validate_chat(request, self._state.config.input)
        prices = self._state.prices
        # The same estimate the request pipeline makes for budgets and planning, priced per model.
        estimate = estimate_chat(request)
        estimates = [
            admin_pb2.CostEstimate(
                backend=backend.id,
                model=model,
                prompt_tokens=estimate.prompt_tokens,
                completion_tokens=estimate.completion_tokens,
                cost_usd=estimate.cost(prices, model),
                available=self._state.settings[backend].enabled and backend.available,
            )
            for backend, model, _ in self._scheduler.targets(
                request.model, pb.CAPABILITY_CHAT, request.routing
            )
        ]
        if not estimates:
            raise InvalidArgument(f"model: nothing serves {request.model!r}")
        estimates.sort(key=lambda e: (e.cost_usd, e.backend))
        return admin_pb2.CompareCostResponse(estimates=estimates)

    @grpc_status
    async def DrainWorker(
        self, request: admin_pb2.DrainWorkerRequest, context: Context
    ) -> admin_pb2.DrainWorkerResponse:
        if not await self._workers.drain(request.worker_id, request.reason or "drained by an operator"):
            raise NotFound(f"worker_id: no worker {request.worker_id!r}")
        return admin_pb2.DrainWorkerResponse(draining=True)

    @grpc_status
    async def ListAuditEvents(
        self, request: admin_pb2.ListAuditEventsRequest, context: Context
    ) -> admin_pb2.ListAuditEventsResponse:
        if request.days > MAX_AUDIT_DAYS:
            raise InvalidArgument(f"days: at most {MAX_AUDIT_DAYS}")
        if request.limit > MAX_LISTED:
            raise InvalidArgument(f"limit: at most {MAX_LISTED}")
        since = time.time() - max(1, request.days) * 86_400
        records = await self._audit.list(since, request.tenant or None, request.limit or 100)
        events = []
        for r in records:
            event = admin_pb2.AuditEvent(
                router_id=r.router_id,
                tenant=r.tenant,
                method=r.method,
                arguments=r.arguments,
                outcome=r.outcome,
                message=r.message,
            )
            event.time.FromNanoseconds(int(r.ts * 1e9))
            events.append(event)
        return admin_pb2.ListAuditEventsResponse(events=events)
