"""`python -m bench [--quick] [--only overhead,stream_interval,simulation,memory,prefix,faults,pool_size,engines,
prefix_engines,fairness,spill,ledger,http_servers]`: writes bench/results/.

The full run is the default; `--quick` (or BENCH_QUICK=1) uses short, bounded loads and skips the
engines. Figures are printed, never asserted. Each section that fails says so in the report and the
others still run. With --only, the sections run replace theirs in RESULTS.md and the rest stays.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable

from bench import (
    engines,
    fairness,
    faults,
    http_servers,
    ledger_cost,
    memory,
    overhead,
    pool_size,
    prefix_engines,
    prefix_sim,
    profile,
    simulation,
    simulation_pool,
    spill,
    stream_interval,
)
from bench.litellm_peer import Install, ensure_installed
from bench.load import load_child
from bench.prefix_workload import WorkloadSettings
from bench.processes import spawn
from bench.report import Report, Table

SECTIONS = (
    "overhead",
    "stream_interval",
    "memory",
    "simulation",
    "prefix",
    "faults",
    "pool_size",
    "engines",
    "prefix_engines",
    "fairness",
    "spill",
    "ledger",
    "http_servers",
)
# Simulated time: the same figures in quick and full mode, and on any machine.
PREFIX_WORKLOAD = WorkloadSettings(seconds=300.0)
QUICK = {
    "overhead": overhead.Settings(requests=20_000, seconds=2.0, warmup=50, rounds=3),
    "stream_interval": stream_interval.Settings(seconds=3.0, concurrency=32),
    "simulation": simulation.Settings(seconds=10.0, rate=40.0, tokens=16),
    "profile_s": 3.0,
    "pool_size": pool_size.QUICK,
    "fairness": fairness.Settings(seconds=8.0),
    "spill": spill.Settings(phase_s=5.0),
    "ledger": ledger_cost.Settings(records=1_000, rounds=3),
    "http_s": 2.0,
}
FULL = {
    "overhead": overhead.Settings(requests=500_000, seconds=10.0, warmup=500, rounds=3),
    "stream_interval": stream_interval.Settings(seconds=10.0, rounds=3),
    "simulation": simulation.Settings(seconds=40.0, rate=40.0, tokens=16),
    "profile_s": 10.0,
    "pool_size": pool_size.FULL,
    "fairness": fairness.Settings(seconds=30.0),
    "spill": spill.Settings(phase_s=20.0),
    "ledger": ledger_cost.Settings(),
    "http_s": 5.0,
}


def _section(report: Report, name: str, body: Callable[[], object]) -> None:
    try:
        body()
    except Exception as e:
        traceback.print_exc()
        report.tables.append(Table(f"{name}: failed", ["error"], [[f"{type(e).__name__}: {str(e)[:300]}"]]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK") == "1")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated: " + ", ".join(SECTIONS))
    parser.add_argument("--no-profile", action="store_true", help="skip profiling when a target is missed")
    args = parser.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    settings = QUICK if args.quick else FULL
    report = Report("quick" if args.quick else "full")
    litellm = ensure_installed() if "overhead" in only else Install(False, "not run")
    report.litellm_version = litellm.version if litellm.ok else f"unavailable ({litellm.version})"
    load = spawn("load-generator", load_child)
    try:
        if "overhead" in only:
            o = settings["overhead"]
            assert isinstance(o, overhead.Settings)
            _section(report, "Router overhead", lambda: overhead.run(report, load, o, litellm))
        if "stream_interval" in only:
            si = settings["stream_interval"]
            assert isinstance(si, stream_interval.Settings)
            _section(report, "Messages per token", lambda: stream_interval.run(report, load, si))
        if "memory" in only:
            _section(report, "Router memory", lambda: memory.run(report, load, memory.Settings()))
        if "simulation" in only:
            sim = settings["simulation"]
            assert isinstance(sim, simulation.Settings)
            _section(report, "Scheduling quality", lambda: simulation.run(report, load, sim))
            _section(
                report, "Scheduling quality, 100 workers", lambda: simulation_pool.run(report, load, sim)
            )
        if "prefix" in only:
            _section(
                report,
                "Prefix-aware routing",
                lambda: prefix_sim.run(report, PREFIX_WORKLOAD, prefix_sim.WorkerModel()),
            )
        if "faults" in only:
            fault_settings = faults.QUICK if args.quick else faults.Settings()
            _section(report, "Faults", lambda: faults.run(report, fault_settings))
        if "pool_size" in only:
            pool = settings["pool_size"]
            assert isinstance(pool, pool_size.Settings)
            _section(report, "Pool size", lambda: pool_size.run(report, load, pool))
        if "fairness" in only:
            fair = settings["fairness"]
            assert isinstance(fair, fairness.Settings)
            _section(report, "Fairness", lambda: fairness.run(report, fair))
        if "spill" in only:
            sp = settings["spill"]
            assert isinstance(sp, spill.Settings)
            _section(report, "Spill", lambda: spill.run(report, sp))
        if "ledger" in only:
            ledger = settings["ledger"]
            assert isinstance(ledger, ledger_cost.Settings)
            _section(report, "Usage ledger", lambda: ledger_cost.run(report, ledger))
        if "http_servers" in only:
            http_s = settings["http_s"]
            assert isinstance(http_s, float)
            _section(report, "HTTP door", lambda: http_servers.run(report, load, http_s))
        if "prefix_engines" in only and not args.quick:
            _section(report, "Prefix-aware routing (real engines)", lambda: prefix_engines.run(report))
        if "engines" in only and not args.quick:
            _section(report, "Engines", lambda: engines.run(report))
        elif "engines" in only:
            report.tables.append(
                Table("Engines", ["note"], [["skipped in quick mode; run `python -m bench` for them"]])
            )
        missed = [t.name for t in report.targets if t.met is False and _router_bound(t.name)]
        if missed and not args.no_profile:
            seconds = settings["profile_s"]
            assert isinstance(seconds, float)
            _section(report, "Profile", lambda: profile.run(report, load, seconds, missed))
    finally:
        load.stop()
    path = report.write(update=only != set(SECTIONS))
    print("\n".join(report.markdown()))
    print(f"bench: wrote {path}", file=sys.stderr)
    return 0


def _router_bound(target: str) -> bool:
    """Targets whose miss a profile of the router's request path explains."""
    return any(word in target for word in ("overhead", "Requests/s", "chunks/s", "LiteLLM", "RSS"))


if __name__ == "__main__":
    sys.exit(main())
