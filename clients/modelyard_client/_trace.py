"""The caller's trace context on every call: W3C `traceparent` (and `tracestate`) from OpenTelemetry, if in use.

The router continues a caller's `traceparent` (README: Traces), so a service that traces with OpenTelemetry sees
its span, the router's and the worker's in one trace. Without the opentelemetry package, or outside any span,
nothing is added. The header comes from the propagator the application configured (W3C trace context by
default), read at each call: the span current where the call is made.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

Metadata = tuple[tuple[str, str], ...]


def with_trace(metadata: Metadata) -> Metadata:
    """`metadata` plus the current span's trace headers, when there is one."""
    inject = _injector()
    if inject is None:
        return metadata
    carrier: dict[str, str] = {}
    inject(carrier)
    return (*metadata, *carrier.items()) if carrier else metadata


@cache
def _injector() -> Callable[[dict[str, str]], None] | None:
    try:
        from opentelemetry import propagate
    except ImportError:
        return None
    return propagate.inject
