"""OpenTelemetry tracing, optional: install the `otel` extra and configure an exporter the standard way.

Tracing is on when the OpenTelemetry SDK is importable and an exporter is configured
(`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or `OTEL_TRACES_EXPORTER=console`), and
`OTEL_SDK_DISABLED` is not true. Otherwise every function here returns shared do-nothing objects: no import of
OpenTelemetry, no allocation per request beyond a call.

A request's trace continues the caller's W3C `traceparent` (gRPC metadata) and is handed on the same way: to a
worker as gRPC metadata, to a cloud provider as an HTTP header. Spans are created with explicit parents, never
"current span" state, so they survive async generators and failover.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, TypeVar, cast

log = logging.getLogger(__name__)
Method = TypeVar("Method", bound=Callable[..., Any])

_NO_HEADERS: Mapping[str, str] = MappingProxyType({})
# The trace headers for the upstream call the current task is about to make (set per attempt).
_outgoing: ContextVar[Mapping[str, str]] = ContextVar("modelyard_trace_headers", default=_NO_HEADERS)
_tracer: Any = None  # an opentelemetry Tracer once tracing is on


class Span:
    """One span (do-nothing when tracing is off)."""

    def set(self, key: str, value: str | int | float | bool) -> None:
        """Set an attribute."""

    def fail(self, error: BaseException) -> None:
        """Mark the span as failed by `error`."""

    def end(self) -> None:
        """End the span (idempotent)."""

    def child(self, name: str, **attributes: str | int | float | bool) -> Span:
        return _OFF

    def headers(self) -> Mapping[str, str]:
        """W3C trace-context headers that make a callee's spans children of this one."""
        return _NO_HEADERS


_OFF = Span()


def enabled() -> bool:
    return _tracer is not None


def setup(service_name: str, env: Mapping[str, str] | None = None) -> bool:
    """Turn tracing on if it is configured (see the module docstring) and installed; True when it is on."""
    env = os.environ if env is None else env
    wanted = any(
        env.get(name) for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ) or env.get("OTEL_TRACES_EXPORTER", "") not in ("", "none")
    if not wanted or env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
    except ImportError:
        log.warning(
            "tracing is configured (OTEL_*) but OpenTelemetry is not installed: pip install 'modelyard[otel]'"
        )
        return False
    exporter: SpanExporter
    if env.get("OTEL_TRACES_EXPORTER") == "console":
        exporter = ConsoleSpanExporter()
    elif env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        exporter = HttpExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    use(provider.get_tracer("modelyard"))
    log.info("tracing on: spans go to %s", type(exporter).__name__)
    return True


def use(tracer: Any) -> None:
    """Trace with this OpenTelemetry tracer (None: off). `setup` calls it; tests pass an in-memory one."""
    global _tracer
    _tracer = tracer


def server_span(name: str, metadata: Iterable[tuple[str, str | bytes]] | None, **attributes: Any) -> Span:
    """The span of a request received, continuing the caller's `traceparent` when it sent one."""
    if _tracer is None:
        return _OFF
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {key: value for key, value in metadata or () if isinstance(value, str)}
    parent = TraceContextTextMapPropagator().extract(carrier)
    return _OtelSpan(
        _tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=_clean(attributes))
    )


class _Untraced(AbstractContextManager[Span]):
    """What request_span and stage are with tracing off: nothing to start or end, five times a request."""

    def __enter__(self) -> Span:
        return _OFF

    def __exit__(self, *exc: object) -> None:
        return None


_UNTRACED = _Untraced()


def request_span(
    name: str, metadata: Iterable[tuple[str, str | bytes]] | None, **attributes: Any
) -> AbstractContextManager[Span]:
    """`server_span` for the length of a `with` block, failed by an exception that leaves it."""
    if _tracer is None:
        return _UNTRACED
    return _spanning(server_span(name, metadata, **attributes))


def stage(parent: Span, name: str, **attributes: Any) -> AbstractContextManager[Span]:
    """A child span of `parent` for the length of a `with` block (admission, scheduling, an attempt)."""
    if parent is _OFF:
        return _UNTRACED
    return _spanning(parent.child(name, **attributes))


@contextmanager
def _spanning(span: Span) -> Iterator[Span]:
    with _ending(span):
        yield span


def traced_rpc(name: str) -> Callable[[Method], Method]:
    """Decorate a servicer method `(self, request, context)`: a server span per call, continuing the caller's
    traceparent, with the request's id and model when it has them."""

    def decorate(method: Method) -> Method:
        def attributes(request: Any) -> dict[str, Any]:
            return {
                "modelyard.request_id": getattr(request, "request_id", ""),
                "modelyard.model": getattr(request, "model", ""),
            }

        if inspect.isasyncgenfunction(method):

            @functools.wraps(method)
            async def stream(self: object, request: Any, context: Any) -> AsyncIterator[object]:
                with request_span(name, context.invocation_metadata(), **attributes(request)):
                    async with contextlib.aclosing(method(self, request, context)) as items:
                        async for item in items:
                            yield item

            return cast(Method, stream)

        @functools.wraps(method)
        async def unary(self: object, request: Any, context: Any) -> object:
            with request_span(name, context.invocation_metadata(), **attributes(request)):
                return await method(self, request, context)

        return cast(Method, unary)

    return decorate


def call_with(span: Span) -> None:
    """The upstream call this task makes next belongs under `span` (its headers are sent with it)."""
    _outgoing.set(span.headers())


def outgoing_headers() -> dict[str, str]:
    """HTTP headers for the upstream call being made (cloud providers)."""
    return dict(_outgoing.get())


def outgoing_metadata() -> tuple[tuple[str, str], ...]:
    """gRPC metadata for the upstream call being made (workers)."""
    return tuple(_outgoing.get().items())


class _OtelSpan(Span):
    def __init__(self, span: Any) -> None:
        self._span = span
        self._ended = False

    def set(self, key: str, value: str | int | float | bool) -> None:
        self._span.set_attribute(key, value)

    def fail(self, error: BaseException) -> None:
        from opentelemetry.trace import Status, StatusCode

        self._span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))

    def end(self) -> None:
        if not self._ended:
            self._ended = True
            self._span.end()

    def child(self, name: str, **attributes: str | int | float | bool) -> Span:
        from opentelemetry.trace import set_span_in_context

        context = set_span_in_context(self._span)
        return _OtelSpan(_tracer.start_span(name, context=context, attributes=_clean(attributes)))

    def headers(self) -> Mapping[str, str]:
        from opentelemetry.trace import set_span_in_context
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier, context=set_span_in_context(self._span))
        return carrier


@contextmanager
def _ending(span: Span) -> Iterator[None]:
    try:
        yield
    except BaseException as error:
        span.fail(error)
        raise
    finally:
        span.end()


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in attributes.items() if value not in (None, "")}
