"""Settings for the admission queue (`admission:`) and local-first placement (`local_first:`).

admission:                       # hold requests in the router while every backend for them is busy
  enabled: true
  target_queue_depth: 0          # requests a worker may queue beyond its max_concurrency before the router holds
  dispatch_lead_ms: 60           # and one more when a slot there is predicted to free this soon (0: off)
  max_queued: 1024               # held at once, all tenants
  max_queued_per_tenant: 256     # held at once, per tenant (a tenant's own max_queued wins)
  max_wait_s: 60                 # the longest a request without a deadline is held
  poll_interval_ms: 50           # while requests wait: how often backends' load is looked at again
  rate_limited_s: 1.0            # after a backend answers "at my limit" (429) and none since: saturated this long
  tenants:
    quiet: {weight: 4}           # a share of dispatch 4x a weight-1 tenant's while both wait
    batch-jobs: {weight: 1, max_queued: 2000}
local_first:                     # where a request runs: local workers first, a cloud to meet a TTFT target
  routes:
    chat: {prefer: local, ttft_slo_ms: 300}
    private: {local_only: true}  # never sent to a cloud backend
  models:
    llama-3-8b: {ttft_slo_ms: 500}
  tenants:
    hospital: {local_only: true}
  headroom: 0.7                  # a predicted queue wait counts 1/0.7 times against a target
  stale_after_s: 2.0             # an idle backend that answered nothing this long is tried again
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt

PRIORITIES = ("interactive", "standard", "batch")  # bands, first served first
DEFAULT_PRIORITY = "standard"
PREFERENCES = ("", "local")


@dataclass(frozen=True)
class TenantAdmission:
    weight: PositiveFloat = 1.0  # share of dispatch while several tenants wait (weighted fair queuing)
    max_queued: PositiveInt | None = None  # None: admission.max_queued_per_tenant


@dataclass(frozen=True)
class AdmissionConfig:
    enabled: bool = False
    target_queue_depth: NonNegativeInt = 0
    # One more for a full worker whose next slot is predicted to free this soon: sent while the slot
    # frees, it does not leave it idle for the router's round trip (a finish relayed, the next request
    # planned and sent: a few ms on an idle host, a median of 40-60 ms measured on a busy shared one,
    # where the workers then stood idle a tenth of the time). 0: only when a slot is free.
    dispatch_lead_ms: NonNegativeInt = 60
    max_queued: PositiveInt = 1024
    max_queued_per_tenant: PositiveInt = 256
    max_wait_s: PositiveFloat = 60.0
    poll_interval_ms: PositiveInt = 50
    rate_limited_s: PositiveFloat = 1.0
    default_weight: PositiveFloat = 1.0
    tenants: dict[str, TenantAdmission] = field(default_factory=dict)

    def weight(self, tenant: str) -> float:
        own = self.tenants.get(tenant)
        return own.weight if own is not None else self.default_weight

    def tenant_bound(self, tenant: str) -> int:
        own = self.tenants.get(tenant)
        if own is not None and own.max_queued is not None:
            return own.max_queued
        return self.max_queued_per_tenant


@dataclass(frozen=True)
class PlacementPolicy:
    """Where one route's, model's or tenant's requests may run, and how fast they must start."""

    prefer: str = ""  # "local": a cloud never wins over a worker with room on speed alone
    ttft_slo_ms: PositiveFloat | None = None  # the default target when the request names none
    local_only: bool = False  # never sent to a cloud backend (privacy)

    def __post_init__(self) -> None:
        if self.prefer not in PREFERENCES:
            raise ValueError(f"prefer: expected 'local' or nothing, got {self.prefer!r}")


@dataclass(frozen=True)
class LocalFirstConfig:
    routes: dict[str, PlacementPolicy] = field(default_factory=dict)
    models: dict[str, PlacementPolicy] = field(default_factory=dict)
    tenants: dict[str, PlacementPolicy] = field(default_factory=dict)
    # A backend's predicted wait for the requests queued ahead counts 1 / headroom times against a target:
    # the prediction is a mean, a target is held at a tail (p99), and a queue's wait varies most (with how
    # far along the running requests are). A cloud with nothing queued is weighed at its plain prediction.
    headroom: Annotated[float, Field(gt=0.0, le=1.0)] = 0.7
    # A backend with a slot free that has answered nothing for this long counts as not yet measured (it
    # gets the next request): a prediction left high by a slow spell would keep it out of traffic, and so
    # itself from being corrected (after a burst the router kept paying the cloud).
    stale_after_s: PositiveFloat = 2.0
