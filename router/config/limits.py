"""Settings for per-tenant rate and concurrency limits (`limits:`); the input caps (`input:`) are
core.input_limits.InputLimits, shared with workers. Both are checked by router.config.schema like every section.

limits:
  default: {requests_per_minute: 600, tokens_per_minute: 200000, concurrent_streams: 16}
  tenants:
    acme: {requests_per_minute: 60}      # fields left out (or null) take the default's; 0: no limit
  store: redis://redis:6379/1            # shared by every router; "" = cache.redis_url if set, else memory
  max_uploads: 8                         # transcriptions being received at once, all tenants
  upload_buffer_bytes: 536870912         # audio held in memory at once, all uploads together
  max_uploads_per_tenant: 4              # of those, one tenant's at most
  upload_idle_timeout_s: 10              # an upload silent this long is ended
  upload_min_bytes_per_s: 8192           # ... or slower than this on average after that long
input:
  max_messages: 2048
  max_tokens: 32768
  image_url_hosts: ["*.example.com"]
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from pydantic import NonNegativeInt, PositiveFloat, PositiveInt

NO_LIMIT = 0


@dataclass(frozen=True)
class TenantLimits:
    """0: no limit. In `tenants:`, a field left out (None) takes the default's value."""

    requests_per_minute: NonNegativeInt | None = None
    tokens_per_minute: NonNegativeInt | None = None  # estimated at admission, corrected to use at the end
    concurrent_streams: NonNegativeInt | None = None  # requests in flight at once, on this router

    def over(self, base: TenantLimits) -> TenantLimits:
        """These limits, with what they leave out taken from `base`."""
        return replace(
            base, **{f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        )

    def limit(self, name: str) -> int | None:
        """The limit as the counters take it: None for no limit."""
        value: int | None = getattr(self, name)
        return None if value in (None, NO_LIMIT) else value


# What `default` leaves out: no rate limits; concurrency bounded so that one tenant cannot take every slot
# of a shared router.
BUILT_IN = TenantLimits(requests_per_minute=NO_LIMIT, tokens_per_minute=NO_LIMIT, concurrent_streams=64)


@dataclass(frozen=True)
class LimitsConfig:
    default: TenantLimits = TenantLimits()  # every tenant; what it leaves out comes from BUILT_IN
    tenants: dict[str, TenantLimits] = field(default_factory=dict)
    # Where counters live: "" = cache.redis_url when the cache is shared, else this router's memory;
    # redis://... = shared by every router, so the fleet enforces one limit; "memory" = per router.
    store: str = field(default="", repr=False)  # may hold a password
    max_uploads: PositiveInt = 8
    upload_buffer_bytes: PositiveInt = 512 << 20
    max_uploads_per_tenant: PositiveInt = 4  # so one tenant's uploads cannot hold every slot
    # An upload that sends nothing this long, or less than min_bytes_per_s on average once it has run this
    # long, is ended (DEADLINE_EXCEEDED) and its slot freed.
    upload_idle_timeout_s: PositiveFloat = 10.0
    upload_min_bytes_per_s: NonNegativeInt = 8192

    def for_tenant(self, tenant: str) -> TenantLimits:
        default = self.default.over(BUILT_IN)
        own = self.tenants.get(tenant)
        return default if own is None else own.over(default)
