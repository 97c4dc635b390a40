"""Response cache: which requests are the same, byte-bounded LRU in memory, and Redis shared with a TTL."""

from __future__ import annotations

from modelyard.v1 import inference_pb2 as pb

from router.accounting.cache.keys import CachedChat, chat_key
from router.accounting.cache.memory import MemoryCache
from router.accounting.cache.redis_cache import RedisCache
from tests.support.polling import wait_until


def chat(
    text: str = "hi",
    temperature: float | None = 0.0,
    request_id: str = "",
    routing: pb.RoutingHints | None = None,
) -> pb.ChatRequest:
    request = pb.ChatRequest(
        request_id=request_id,
        model="echo",
        messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=text)])],
        routing=routing,
    )
    if temperature is not None:
        request.sampling.temperature = temperature
    return request


def test_only_deterministic_or_marked_requests_have_a_key() -> None:
    assert chat_key(chat(), "t") is not None
    assert chat_key(chat(temperature=None), "t") is None
    assert chat_key(chat(temperature=0.7), "t") is None
    assert chat_key(chat(temperature=0.7, routing=pb.RoutingHints(cacheable=True)), "t") is not None


def test_key_ignores_request_id_and_routing_preferences_but_not_content() -> None:
    base = chat_key(chat(), "t")
    assert (
        chat_key(chat(request_id="abc", routing=pb.RoutingHints(strategy=pb.STRATEGY_LATENCY)), "t") == base
    )
    assert chat_key(chat("other"), "t") != base
    assert chat_key(chat(routing=pb.RoutingHints(provider="w1")), "t") != base
    assert chat_key(chat(), "another-tenant") != base
    different_sampling = chat()
    different_sampling.sampling.max_tokens = 5
    assert chat_key(different_sampling, "t") != base


def test_cached_chat_replays_deltas_then_a_free_cache_hit() -> None:
    entry = CachedChat("w1", "echo", 3, 2, "stop", ["a ", "b "])
    replay = CachedChat.decode(entry.encode()).replay("rid", ttft_ms=1.0, latency_ms=2.0)
    assert [r.delta.text for r in replay[:-1]] == ["a ", "b "]
    usage = replay[-1].usage
    assert (usage.backend, usage.cache_hit, usage.cost_usd, usage.completion_tokens) == ("w1", True, 0.0, 2)
    assert usage.request_id == "rid"


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_memory_cache_evicts_least_recently_used_by_bytes() -> None:
    cache = MemoryCache(max_bytes=3 * 300, ttl_s=60)
    for key in ("a", "b", "c"):
        await cache.put(key, b"x" * 90)  # about 291 bytes each with the bookkeeping
    assert await cache.get("a") == b"x" * 90  # now the most recently used
    await cache.put("d", b"x" * 90)
    assert await cache.get("b") is None
    assert await cache.get("a") is not None
    assert cache.bytes <= cache.max_bytes
    assert cache.evictions == 1
    await cache.put("huge", b"x" * 10_000)  # bigger than the cache: not kept, nothing evicted
    assert await cache.get("huge") is None
    assert len(cache) == 3


async def test_memory_cache_entries_expire() -> None:
    clock = Clock()
    cache = MemoryCache(max_bytes=10_000, ttl_s=300, clock=clock)
    await cache.put("k", b"v")
    clock.now = 299.0
    assert await cache.get("k") == b"v"
    clock.now = 300.0
    assert await cache.get("k") is None
    assert cache.bytes == 0


async def test_redis_cache_round_trip_and_ttl(redis_url: str) -> None:
    cache = RedisCache(redis_url, ttl_s=0.2)
    try:
        assert await cache.get("missing") is None
        await cache.put("k", b"value")
        assert await cache.get("k") == b"value"
        await wait_until(lambda: _gone(cache, "k"), message="the entry outlived its TTL")
    finally:
        await cache.close()


async def test_redis_down_is_a_miss_not_an_error() -> None:
    from tests.support.servers import free_port

    cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0", ttl_s=60)
    try:
        await cache.put("k", b"v")
        assert await cache.get("k") is None
    finally:
        await cache.close()


async def _gone(cache: RedisCache, key: str) -> bool:
    return await cache.get(key) is None
