"""The Admin service: change backends and strategy at run time; compare what a request would cost."""

from __future__ import annotations

from typing import Any

import grpc
from modelyard.v1 import admin_pb2, admin_pb2_grpc
from modelyard.v1 import inference_pb2 as pb

from core import wire
from core.errors import InvalidArgument, ModelNotFound, StatusError
from core.validation import validate_chat
from router.accounting.pricing import DEFAULT_COMPLETION_TOKENS, estimate_prompt_tokens
from router.routing.backend_status import backend_status
from router.routing.scheduler import Scheduler
from router.routing.scoring.strategies import strategy_name
from router.routing.state import RoutingState
from router.services.worker_registry_service import WorkerRegistryServicer

Context = grpc.aio.ServicerContext[Any, Any]


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):  # type: ignore[misc]
    def __init__(self, state: RoutingState, scheduler: Scheduler, workers: WorkerRegistryServicer) -> None:
        self._state = state
        self._scheduler = scheduler
        self._workers = workers

    async def UpdateBackend(
        self, request: admin_pb2.UpdateBackendRequest, context: Context
    ) -> admin_pb2.UpdateBackendResponse:
        try:
            backend = self._state.registry.get(request.backend)
            if backend is None:
                known = ", ".join(sorted(b.id for b in self._state.registry)) or "none"
                raise ModelNotFound(f"backend: no backend {request.backend!r}; known: {known}")
            settings = self._state.settings[backend]
            if request.HasField("enabled"):
                settings.enabled = request.enabled
            if request.HasField("priority"):
                settings.priority = request.priority
            return admin_pb2.UpdateBackendResponse(backend=backend_status(backend, self._state))
        except StatusError as e:
            await context.abort(e.code, e.message)
            raise

    async def SetStrategy(
        self, request: admin_pb2.SetStrategyRequest, context: Context
    ) -> admin_pb2.SetStrategyResponse:
        strategies = self._state.strategies
        try:
            requested = strategy_name(request.strategy)
            name = requested or strategies.default
            if request.weights:
                strategies.set_weights(name, dict(request.weights))
            if requested:
                strategies.default = strategies.check(requested)
            return admin_pb2.SetStrategyResponse(
                strategy=wire.strategy(strategies.default), weights=strategies.weights(name)
            )
        except StatusError as e:
            await context.abort(e.code, e.message)
            raise

    async def CompareCost(
        self, compare: admin_pb2.CompareCostRequest, context: Context
    ) -> admin_pb2.CompareCostResponse:
        request = compare.chat
        try:
            validate_chat(request)
            prices = self._state.prices
            # The request is the same for every target: estimate its tokens once, price them per model.
            prompt = estimate_prompt_tokens(request)
            completion = (
                request.sampling.max_tokens
                if request.sampling.HasField("max_tokens")
                else DEFAULT_COMPLETION_TOKENS
            )
            estimates = []
            for backend, model, _ in self._scheduler.targets(
                request.model, pb.CAPABILITY_CHAT, request.routing
            ):
                estimates.append(
                    admin_pb2.CostEstimate(
                        backend=backend.id,
                        model=model,
                        prompt_tokens=prompt,
                        completion_tokens=completion,
                        cost_usd=prices.cost(model, prompt, completion),
                        available=self._state.settings[backend].enabled and backend.available,
                    )
                )
            if not estimates:
                raise InvalidArgument(f"model: nothing serves {request.model!r}")
            estimates.sort(key=lambda e: (e.cost_usd, e.backend))
            return admin_pb2.CompareCostResponse(estimates=estimates)
        except StatusError as e:
            await context.abort(e.code, e.message)
            raise

    async def DrainWorker(
        self, request: admin_pb2.DrainWorkerRequest, context: Context
    ) -> admin_pb2.DrainWorkerResponse:
        if not await self._workers.drain(request.worker_id, request.reason or "drained by an operator"):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"worker_id: no worker {request.worker_id!r}")
        return admin_pb2.DrainWorkerResponse(draining=True)
