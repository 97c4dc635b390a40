"""Settings for scheduling over a large worker pool (`pool:`): how many candidates a request scores.

pool:
  exact_max: 32        # candidates for a request up to this many: every one is scored and ranked
  sample: 8            # above it: K random workers in rotation, beside the prefix holders, the last ranking
                       # and every cloud
  panic_routing: true  # every candidate unhealthy or behind an open circuit: try them anyway, best first
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import PositiveInt


@dataclass(frozen=True)
class PoolConfig:
    # Up to this many targets the ranking is exact (every candidate scored): small pools behave as before.
    exact_max: PositiveInt = 32
    # Above it, the power of K choices (Envoy's least-request balancer samples 2): K random workers in
    # rotation, plus the workers holding the request's longest prefix (at most K of them), the previous
    # request's ranking (memory: the best found so far stay in the running) and every cloud provider. 8
    # keeps the scheduler's work per request constant whatever the pool; with the memory, 4 to 32 gave the
    # simulated 100-worker pool (bench/pool_sim.py) the same p99 TTFT as scoring every worker.
    sample: PositiveInt = 8
    # Envoy's panic threshold: when no candidate is healthy, health is ignored rather than refusing all.
    panic_routing: bool = True
