"""Per-tenant requests per minute, tokens per minute and concurrent streams (config `limits:`).

Requests and tokens are counted in fixed one-minute windows, in the counter store (router.accounting.counters):
shared by every router when it is Redis, so the fleet enforces one limit. Tokens are the request's estimate at
admission, corrected to what it used at the end. Concurrent streams are counted by each router, in memory:
a slot must be given back even when a router dies, which a shared counter cannot promise.
A refusal is RESOURCE_EXHAUSTED with a retry delay: the rest of the minute, or a second for a stream slot.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable

from core.errors import CapacityExhausted, RateLimited
from router.accounting.counters.store import Counter, CounterStore
from router.config.limits import BUILT_IN, LimitsConfig, TenantLimits

_WINDOW_S = 60.0
_WINDOW_TTL_S = 2 * _WINDOW_S
STREAM_RETRY_S = 1.0  # a stream slot frees when some request of the tenant ends: soon, but unknown


class Admission:
    """One admitted request: its stream slot and its tokens-per-minute estimate, until `release`."""

    def __init__(self, limiter: TenantLimiter, tenant: str, tokens: Counter | None) -> None:
        self._limiter = limiter
        self._tenant = tenant
        self._tokens = tokens
        self._released = False

    def release(self, tokens_used: int) -> None:
        if self._released:
            return
        self._released = True
        self._limiter._end_stream(self._tenant)
        if self._tokens is not None:
            t = self._tokens
            self._limiter.counters.adjust([Counter(t.key, tokens_used - t.amount, None, t.ttl_s)])


class TenantLimiter:
    def __init__(
        self, config: LimitsConfig, counters: CounterStore, clock: Callable[[], float] = time.time
    ) -> None:
        self._config = config
        # Resolved once: merging each tenant's limits over the default took ~5% of the router's time per request.
        self._default_limits = config.default.over(BUILT_IN)
        self._own_limits = {tenant: config.for_tenant(tenant) for tenant in config.tenants}
        self.counters = counters
        self._clock = clock
        self._streams: Tally[str] = Tally()

    def _limits(self, tenant: str) -> TenantLimits:
        return self._own_limits.get(tenant, self._default_limits)

    def streams(self, tenant: str) -> int:
        return self._streams[tenant]

    async def admit(self, tenant: str, tokens: int) -> Admission:
        streams = self._limits(tenant).limit("concurrent_streams")
        if streams is not None and self._streams[tenant] >= streams:
            raise RateLimited(
                f"tenant {tenant}: {streams} concurrent streams already running (limits.concurrent_streams)",
                STREAM_RETRY_S,
                limit="concurrent_streams",
            )
        # Taken before the await below, so parallel admissions on this router see each other.
        self._streams[tenant] += 1
        try:
            tokens_counter = await self._count(tenant, tokens)
        except BaseException:
            self._end_stream(tenant)
            raise
        return Admission(self, tenant, tokens_counter)

    async def _count(self, tenant: str, tokens: int) -> Counter | None:
        limits = self._limits(tenant)
        requests_limit = limits.limit("requests_per_minute")
        tokens_limit = limits.limit("tokens_per_minute")
        if requests_limit is None and tokens_limit is None:
            return None
        if tokens_limit is not None and tokens > tokens_limit:
            raise CapacityExhausted(
                f"tenant {tenant}: this request alone needs about {tokens} tokens, more than the "
                f"tokens_per_minute limit {tokens_limit}; ask for fewer (sampling.max_tokens)"
            )
        now = self._clock()
        window = int(now // _WINDOW_S)
        counters = [
            Counter(f"rate:{{{tenant}}}:requests:{window}", 1, requests_limit, _WINDOW_TTL_S),
            Counter(f"rate:{{{tenant}}}:tokens:{window}", tokens, tokens_limit, _WINDOW_TTL_S),
        ]
        result = await self.counters.try_add(counters)
        if result.failed is not None:
            retry = _WINDOW_S - now % _WINDOW_S
            if result.failed == 0:
                raise RateLimited(
                    f"tenant {tenant}: requests_per_minute limit {requests_limit} reached",
                    retry,
                    limit="requests_per_minute",
                )
            raise RateLimited(
                f"tenant {tenant}: tokens_per_minute limit {tokens_limit} reached "
                f"(used {result.values[1]} this minute, this request needs about {tokens})",
                retry,
                limit="tokens_per_minute",
            )
        return counters[1]

    def _end_stream(self, tenant: str) -> None:
        self._streams[tenant] -= 1
        if self._streams[tenant] <= 0:
            del self._streams[tenant]
