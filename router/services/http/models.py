"""GET /v1/models (and /v1/models/{id}): the models backends serve now, the configured route aliases and
"auto", each as OpenAI's model object. GET /health and /ready: see HealthHandler."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from core.errors import ModelNotFound
from router.call_gate import CallGate
from router.readiness import Readiness
from router.routing.scheduler import AUTO
from router.routing.state import RoutingState

OWNER = "modelyard"


class ModelsHandler:
    def __init__(self, state: RoutingState) -> None:
        self._state = state

    def _models(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for model, by_capability in sorted(self._state.registry.models().items()):
            backends = sorted({b for ids in by_capability.values() for b in ids})
            out[model] = _model(model, backends)
        for alias in sorted(self._state.config.routes):
            out.setdefault(alias, _model(alias, []))
        if self._state.registry.models():  # `auto` stands for what is served: nothing, while nothing is
            out.setdefault(AUTO, _model(AUTO, []))
        return out

    async def list(self, http: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": list(self._models().values())})

    async def retrieve(self, http: web.Request) -> web.Response:
        model = http.match_info["model"]
        found = self._models().get(model)
        if found is None:
            raise ModelNotFound(f"model: {model!r} is not served here; GET /v1/models lists what is")
        return web.json_response(found)


def _model(model: str, backends: list[str]) -> dict[str, Any]:
    # created: unknown for routed models; 0 keeps the field's type.
    return {
        "id": model,
        "object": "model",
        "created": 0,
        "owned_by": OWNER,
        "modelyard": {"backends": backends},
    }


class HealthHandler:
    """GET /health: 200 until the router starts stopping (its drain), then 503. GET /ready: 200 only while it
    takes traffic: warmed up (router.readiness) and not stopping."""

    def __init__(self, readiness: Readiness, gate: CallGate) -> None:
        self._readiness = readiness
        self._gate = gate

    async def live(self, http: web.Request) -> web.Response:
        if self._readiness.draining or self._gate.closed:
            return web.json_response({"status": "stopping"}, status=503)
        return web.json_response({"status": "ok"})

    async def ready(self, http: web.Request) -> web.Response:
        if self._readiness.draining or self._gate.closed:
            return web.json_response({"status": "stopping"}, status=503)
        if not self._readiness.ready:
            return web.json_response({"status": "starting"}, status=503)
        return web.json_response({"status": "ok"})
