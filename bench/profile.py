"""Where the router's time goes: cProfile inside the router process while the rate load runs.

cProfile slows the router several times over, so its figures are shares of the time, never rates.
"""

from __future__ import annotations

from bench.flame import LOADS, RESULTS
from bench.load import ChatLoad
from bench.processes import Child
from bench.report import Report
from bench.stack import HTTP_MODEL, spawn_stack


def run(report: Report, load: Child, seconds: float, missed: list[str]) -> None:
    print("bench: profiling the router", flush=True)
    stack = spawn_stack("profile", profile=True)
    address, router = stack.address, stack.router
    lines = [
        f"Targets missed: {', '.join(missed)}. cProfile ran inside the router process during {seconds:.0f} s of "
        "concurrency-64 load per backend; top functions by own time (tottime), cumulative time beside.",
        "",
        "How to read it: `{method 'run' of '_contextvars.Context' objects}` is the time asyncio spends running "
        "callbacks whose code cProfile cannot see, mostly grpc.aio's compiled (Cython) core: HTTP/2 framing, "
        "completion-queue polling, message (de)serialisation. Time inside an awaited Cython call shows as "
        "the own time of the Python frame awaiting it (e.g. grpc/aio/_call.py `_send_unary_request`). "
        "`router (ours)` is this repository's code: validation, scheduling, failover, accounting. cProfile "
        "slows every Python call several times over and cannot see compiled code, so it overstates our share; "
        "the flame graphs below and the overhead table's CPU columns are the fair measure.",
        "",
    ]
    try:
        for label, model, tokens in (
            ("worker backend, 1-chunk answers", "bench", 1),
            ("worker backend, 64-chunk streams", "bench", 64),
            ("HTTP (openai_compatible) backend, 1-chunk answers", HTTP_MODEL, 1),
        ):
            router.request("profile-on", 10)
            load.request(ChatLoad(address, "router", 64, 1_000_000, seconds, tokens, 0, model), seconds + 120)
            top: list[str] = router.request("profile-take", 60)
            lines += [f"**{label}**", "", "```", *top, "```", ""]
    finally:
        stack.stop()
    report.profile = lines + _flame_graphs() + report.profile


def _flame_graphs() -> list[str]:
    """Links to the flame graphs `python -m bench.flame` draws (`make bench` runs it after this report)."""
    lines = [
        "**Flame graphs** (py-spy samples the router from outside, so nothing is slowed down: read the shares, "
        "not rates; `python -m bench.flame`, which `make bench` runs after this report; `_before` from before "
        "the hot-path work of issue 15):",
        "",
    ]
    for name, _model, concurrency, tokens in LOADS:
        what = f"{'openai_compatible' if name.startswith('openai') else 'worker'} backend, c={concurrency}, "
        what += f"{tokens}-chunk answers"
        pictures = [f"[after](profile_{name}.svg)"]
        if (RESULTS / f"profile_{name}_before.svg").exists():
            pictures.append(f"[before](profile_{name}_before.svg)")
        lines.append(f"- {what}: {', '.join(pictures)}")
    return [*lines, ""]
