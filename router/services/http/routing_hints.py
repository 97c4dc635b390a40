"""Routing hints over HTTP: `x-modelyard-*` headers, overridden by the body's `modelyard` extension object.

    x-modelyard-strategy: cost_optimized      {"modelyard": {"strategy": "cost_optimized",
    x-modelyard-provider: anthropic                          "provider": "anthropic",
    x-modelyard-max-cost-usd: 0.01                           "max_cost_usd": 0.01,
    x-modelyard-task: code                                   "task": "code", "cacheable": true,
    x-modelyard-cacheable: true                              "request_id": "...",
    x-modelyard-ttft-slo-ms: 300                             "ttft_slo_ms": 300,
    x-modelyard-priority: interactive                        "priority": "interactive"}}
    x-request-id: <id>

The openai SDKs pass the extension with `extra_body={"modelyard": {...}}` and headers with `extra_headers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from modelyard.v1 import inference_pb2 as pb

from core import wire
from core.errors import InvalidArgument
from router.services.http.fields import Json, opt_bool, opt_number, opt_obj, opt_str

EXTENSION = "modelyard"
_HEADER = "x-modelyard-"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def routing_hints(headers: Mapping[str, str], body: Json | None = None) -> pb.RoutingHints:
    hints = pb.RoutingHints()
    _from_headers(hints, headers)
    extension = opt_obj(body, EXTENSION) if body is not None else None
    if extension is not None:
        _from_extension(hints, extension)
    return hints


def request_id(headers: Mapping[str, str], body: Json | None = None) -> str:
    extension = opt_obj(body, EXTENSION) if body is not None else None
    from_body = opt_str(extension, "request_id", f"{EXTENSION}.request_id") if extension else None
    return from_body or headers.get("x-request-id", "")[:128]


def _strategy(name: str, field: str) -> pb.Strategy:
    try:
        return wire.strategy(name)
    except ValueError:
        known = ", ".join(wire.enum_names(pb.Strategy))
        raise InvalidArgument(f"{field}: unknown strategy {name!r}; known: {known}") from None


def _from_headers(hints: pb.RoutingHints, headers: Mapping[str, str]) -> None:
    if value := headers.get(_HEADER + "strategy"):
        hints.strategy = _strategy(value, _HEADER + "strategy")
    if value := headers.get(_HEADER + "provider"):
        hints.provider = value
    if value := headers.get(_HEADER + "task"):
        hints.task = value
    if value := headers.get(_HEADER + "max-cost-usd"):
        try:
            hints.max_cost_usd = float(value)
        except ValueError:
            raise InvalidArgument(f"{_HEADER}max-cost-usd: {value!r} is not a number") from None
    if value := headers.get(_HEADER + "cacheable"):
        if value.lower() not in _TRUE | _FALSE:
            raise InvalidArgument(f"{_HEADER}cacheable: expected true or false, got {value!r}")
        hints.cacheable = value.lower() in _TRUE
    _placement_headers(hints, headers)


def _from_extension(hints: pb.RoutingHints, ext: Json) -> None:
    field = EXTENSION + "."
    if (value := opt_str(ext, "strategy", field + "strategy")) is not None:
        hints.strategy = _strategy(value, field + "strategy")
    if (value := opt_str(ext, "provider", field + "provider")) is not None:
        hints.provider = value
    if (value := opt_str(ext, "task", field + "task")) is not None:
        hints.task = value
    if (cost := opt_number(ext, "max_cost_usd", field + "max_cost_usd")) is not None:
        hints.max_cost_usd = cost
    if (cacheable := opt_bool(ext, "cacheable", field + "cacheable")) is not None:
        hints.cacheable = cacheable
    if (slo := opt_number(ext, "ttft_slo_ms", field + "ttft_slo_ms")) is not None:
        _ttft_slo(hints, slo, field + "ttft_slo_ms")
    if (priority := opt_str(ext, "priority", field + "priority")) is not None:
        hints.priority = _priority(priority, field + "priority")


def _placement_headers(hints: pb.RoutingHints, headers: Mapping[str, str]) -> None:
    """The TTFT target and admission priority (router.routing.placement)."""
    if value := headers.get(_HEADER + "ttft-slo-ms"):
        try:
            slo = float(value)
        except ValueError:
            raise InvalidArgument(f"{_HEADER}ttft-slo-ms: {value!r} is not a number") from None
        _ttft_slo(hints, slo, _HEADER + "ttft-slo-ms")
    if value := headers.get(_HEADER + "priority"):
        hints.priority = _priority(value, _HEADER + "priority")


def _ttft_slo(hints: pb.RoutingHints, ms: float, field: str) -> None:
    if not 0 < ms < 3_600_000:  # `not` catches NaN too
        raise InvalidArgument(f"{field}: {ms:g} is not a target in milliseconds (more than 0, under an hour)")
    hints.ttft_slo.CopyFrom(wire.duration_ms(ms))


def _priority(name: str, field: str) -> pb.Priority:
    try:
        return cast(pb.Priority, pb.Priority.Value("PRIORITY_" + name.upper()))
    except ValueError:
        raise InvalidArgument(
            f"{field}: unknown priority {name!r}; known: interactive, standard, batch"
        ) from None
