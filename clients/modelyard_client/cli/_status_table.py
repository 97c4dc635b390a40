"""`modelyard status` as text: a header with the strategy, one row per backend, then what needs a sentence.

The default columns fit a normal terminal: health, circuit, enabled and priority, success rate, the score the
scheduler last gave, and load. `--wide` adds the address, worker queue and KV cache, request and failure
counts, and EWMA latencies, and lists every backend's score components below the table. The router's
admission queue follows, one row per tenant (a tenant that is no admin sees its own): requests waiting, the
oldest one's wait, the mean wait of those dispatched, and counts.
"""

from __future__ import annotations

from modelyard_client import BackendStatus, RouterStatus, TenantQueue
from modelyard_client.cli._common import table

NARROW = ("BACKEND", "KIND", "STATE", "CIRCUIT", "ENABLED", "PRIO", "SUCCESS", "SCORE", "IN-FLIGHT", "MODELS")
WIDE = (
    "BACKEND",
    "KIND",
    "ADDRESS",
    "STATE",
    "CIRCUIT",
    "ENABLED",
    "PRIO",
    "SUCCESS",
    "REQUESTS",
    "FAILURES",
    "TTFT",
    "LATENCY",
    "SCORE",
    "RUNNING",
    "WAITING",
    "KV-CACHE",
    "IN-FLIGHT",
    "MODELS",
)
# What a redacted status leaves out (router.routing.backend_status.redacted).
_HIDDEN = ("ADDRESS", "PRIO", "SUCCESS", "REQUESTS", "FAILURES", "TTFT", "LATENCY", "SCORE", "IN-FLIGHT")
_COLOURS = {
    "healthy": "green",
    "closed": "green",
    "unhealthy": "red",
    "open": "red",
    "no": "red",
    "draining": "yellow",
    "half-open": "yellow",
}


def format_status(status: RouterStatus, *, wide: bool = False, colour: bool = False) -> str:
    lines = [_head(status)]
    if not status.backends:
        lines.append("no backends registered")
    else:
        header = WIDE if wide else NARROW
        rows = [[_cells(b, status.redacted)[column] for column in header] for b in status.backends]
        lines.append(table(header, rows, _cell_colour if colour else None))
        lines += _notes(status.backends, wide)
    if status.queues:
        lines += ["", "admission queue", table(QUEUES, [_queue_row(q) for q in status.queues])]
    return "\n".join(lines)


QUEUES = ("TENANT", "WEIGHT", "QUEUED", "OLDEST-WAIT", "MEAN-WAIT", "DISPATCHED", "REFUSED")


def _queue_row(q: TenantQueue) -> list[str]:
    return [
        q.tenant,
        _number(q.weight),
        str(q.queued),
        _ms(q.oldest_wait_seconds * 1000) if q.queued else "-",
        _ms(q.mean_wait_seconds * 1000) if q.dispatched else "-",
        str(q.dispatched),
        str(q.refused),
    ]


def _head(status: RouterStatus) -> str:
    head = f"router {status.router_id or '?'}  version {status.version or '?'}  up {_duration(status.uptime_seconds)}"
    if status.strategy:
        weights = ", ".join(f"{name} {_number(weight)}" for name, weight in status.weights.items())
        head += f"  strategy {status.strategy}" + (f" ({weights})" if weights else "")
    return head


def _cells(b: BackendStatus, redacted: bool = False) -> dict[str, str]:
    load = b.load
    measured = b.requests > 0
    cells = {
        "BACKEND": b.id,
        "KIND": b.kind or "?",
        "ADDRESS": b.address or "-",
        "STATE": "draining" if b.draining else "healthy" if b.healthy else "unhealthy",
        "CIRCUIT": b.circuit.replace("_", "-") or "?",
        "ENABLED": "yes" if b.enabled else "no",
        "PRIO": str(b.priority),
        # The EWMA starts at 100%: until a request has been measured, there is nothing to show.
        "SUCCESS": f"{b.success_rate:.0%}" if measured else "-",
        "REQUESTS": str(b.requests),
        "FAILURES": str(b.failures),
        "TTFT": _ms(b.ttft_ms),
        "LATENCY": _ms(b.latency_ms),
        "SCORE": f"{b.last_score:.2f}" if b.score_components else "-",
        "RUNNING": str(load.running) if load else "-",
        "WAITING": str(load.waiting) if load else "-",
        "KV-CACHE": f"{load.kv_cache_usage:.0%}" if load else "-",
        "IN-FLIGHT": f"{b.in_flight}/{b.max_concurrency}" if b.max_concurrency else str(b.in_flight),
        "MODELS": ", ".join(m.id for m in b.models) or "-",
    }
    if redacted:  # left out for a caller who is no admin: a dash, never a zero that reads as a fact
        cells.update({column: "-" for column in _HIDDEN})
    return cells


def _notes(backends: tuple[BackendStatus, ...], wide: bool) -> list[str]:
    """Sentences too long for a column: why a backend is failing, and (wide) what its score is made of."""
    notes = []
    for b in backends:
        troubled = not b.healthy or b.circuit not in ("", "closed")
        if b.last_error and (wide or troubled):
            notes.append(f"{b.id}: last error: {b.last_error}")
        if wide and b.score_components:
            parts = ", ".join(f"{name} {value:.2f}" for name, value in b.score_components.items())
            notes.append(f"{b.id}: score {b.last_score:.2f} from {parts}")
    return notes


def _cell_colour(column: str, cell: str) -> str | None:
    if column in ("STATE", "CIRCUIT", "ENABLED"):
        return _COLOURS.get(cell)
    return None


def _ms(value: float) -> str:
    return f"{value:.0f}ms" if value > 0 else "-"


def _number(value: float) -> str:
    return f"{value:g}"


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
