"""Prefix keys and the per-worker prefix index: what is keyed, bounded memory, eviction by size and age."""

from __future__ import annotations

import random
import tracemalloc

import pytest
from modelyard.v1 import inference_pb2 as pb

from core.prefix_keys import block_keys, prefix_keys, render
from gpu_worker.convert import chat_input
from router.config.settings import PrefixConfig
from router.routing.prefix_index import BYTES_PER_KEY, PrefixIndex
from router.routing.prefix_routing import PrefixRouting, tenant_salt


def chat(*turns: tuple[pb.Role, str]) -> pb.ChatRequest:
    return pb.ChatRequest(
        model="m",
        messages=[pb.Message(role=role, content=[pb.ContentPart(text=text)]) for role, text in turns],
    )


SYSTEM = (pb.ROLE_SYSTEM, "You are a careful assistant. " * 40)  # 1,120 bytes: four full blocks


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_next_turn_shares_every_full_block_of_the_previous_turn() -> None:
    first = chat(SYSTEM, (pb.ROLE_USER, "What is a KV cache?"))
    second = chat(
        SYSTEM,
        (pb.ROLE_USER, "What is a KV cache?"),
        (pb.ROLE_ASSISTANT, "It keeps attention keys and values. " * 10),
        (pb.ROLE_USER, "And prefix caching?"),
    )
    one, two = prefix_keys(first), prefix_keys(second)
    assert len(one) == len(render(first)) // 256  # only full blocks are keyed
    assert two[: len(one)] == one
    assert len(two) > len(one)


def test_keys_depend_on_everything_before_them() -> None:
    other_system = (pb.ROLE_SYSTEM, "You are a terse assistant.  " * 40)
    a = prefix_keys(chat(SYSTEM, (pb.ROLE_USER, "hi " * 200)))
    b = prefix_keys(chat(other_system, (pb.ROLE_USER, "hi " * 200)))
    assert not set(a) & set(b)  # chained: a different start changes every later key
    # Message boundaries and roles are part of the rendering.
    assert render(chat((pb.ROLE_USER, "ab"), (pb.ROLE_USER, "c"))) != render(
        chat((pb.ROLE_USER, "a"), (pb.ROLE_USER, "bc"))
    )
    assert render(chat((pb.ROLE_USER, "x"))) != render(chat((pb.ROLE_ASSISTANT, "x")))
    assert block_keys(b"x" * 100, 256) == []


def test_match_counts_the_leading_keys_held() -> None:
    index = PrefixIndex()
    index.store("w1", "m", [1, 2, 3])
    assert index.match("w1", "m", [1, 2, 3, 4]) == 3
    assert index.match("w1", "m", [1, 9, 3]) == 1  # a prefix stops at its first miss
    assert index.match("w1", "other-model", [1, 2, 3]) == 0
    assert index.match("w2", "m", [1, 2, 3]) == 0
    index.remove("w1", "m", [2])
    assert index.match("w1", "m", [1, 2, 3]) == 1


def test_size_bounds_evict_the_least_recently_used() -> None:
    clock = Clock()
    index = PrefixIndex(PrefixConfig(max_keys=10, max_keys_per_worker=6), clock)
    index.store("w1", "m", range(6))
    clock.now += 1
    index.store("w1", "m", [0])  # touched: now the most recent
    clock.now += 1
    index.store("w1", "m", [100, 101])  # w1 holds, oldest first: 3 4 5 0 100 101
    assert index.keys_held("w1") == 6
    assert index.match("w1", "m", [0]) == 1
    assert index.match("w1", "m", [1]) == 0
    assert index.match("w1", "m", [2]) == 0
    clock.now += 1
    index.store("w2", "m", range(200, 206))
    assert len(index) == 10  # the global bound took the two oldest keys of all, w1's 3 and 4
    assert index.keys_held("w2") == 6
    assert index.keys_held("w1") == 4
    assert [index.match("w1", "m", [k]) for k in (3, 4, 5, 0, 100, 101)] == [0, 0, 1, 1, 1, 1]


def test_keys_expire_with_age_and_are_swept() -> None:
    clock = Clock()
    index = PrefixIndex(PrefixConfig(max_age_s=60), clock)
    index.store("w1", "m", [1, 2])
    clock.now += 30
    index.store("w1", "m", [3])
    assert index.match("w1", "m", [1, 2]) == 2
    clock.now += 31  # 1 and 2 are now 61 s old, 3 is 31 s old
    assert index.match("w1", "m", [1, 2]) == 0
    assert index.match("w1", "m", [3]) == 1
    index.store("w2", "m", [4])  # any store sweeps every worker's expired keys
    assert len(index) == 2


def test_clear_forgets_one_worker_only() -> None:
    index = PrefixIndex()
    index.store("w1", "a", [1])
    index.store("w1", "b", [2])
    index.store("w2", "a", [1])
    index.clear("w1")
    assert index.keys_held("w1") == 0
    assert len(index) == 1
    assert index.match("w2", "a", [1]) == 1


def test_memory_stays_within_the_configured_bound() -> None:
    limits = PrefixConfig(max_keys=5_000, max_keys_per_worker=2_000)
    index = PrefixIndex(limits)
    rng = random.Random(7)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for request in range(500):  # 50,000 keys offered: ten times the bound
            index.store(f"w{request % 5}", "m", [rng.getrandbits(64) for _ in range(100)])
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(index) == limits.max_keys
    assert all(index.keys_held(f"w{w}") <= limits.max_keys_per_worker for w in range(5))
    assert used <= limits.max_keys * BYTES_PER_KEY


@pytest.mark.parametrize(
    "fields",
    [
        {"max_keys": 0},
        {"max_keys_per_worker": 0},
        {"max_age_s": 0},
        {"busy_threshold": 0},
        {"imbalance_margin": 0},
        {"imbalance_ratio": 0.5},
        {"block_bytes": 1},
    ],
)
def test_limits_are_checked(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="prefix"):
        PrefixConfig(**fields)  # type: ignore[arg-type]


def test_one_request_gives_at_most_max_keys_per_request_from_its_start() -> None:
    routing = PrefixRouting(PrefixConfig(max_keys_per_request=8))
    huge = chat(SYSTEM, (pb.ROLE_USER, "words " * 2000))  # about 48 blocks
    keys = routing.keys(huge)
    assert len(keys) == 8
    assert keys == prefix_keys(huge)[:8]  # the same prefix: a cut request still matches its next turn


def test_holders_are_the_workers_with_the_longest_prefix() -> None:
    index = PrefixIndex()
    index.store("short", "m", [1, 2])
    index.store("long", "m", [1, 2, 3, 4])
    index.store("other-model", "n", [1, 2, 3, 4, 5])
    # Every model's holders: the scheduler keeps those of the model it routes.
    assert set(index.holders([1, 2, 3, 4], limit=8)) == {("long", "m"), ("other-model", "n")}
    assert set(index.holders([1, 2, 9], limit=8)) == {("short", "m"), ("long", "m"), ("other-model", "n")}
    assert index.holders([7, 8], limit=8) == []
    index.clear("long")
    assert index.holders([1, 2, 3, 4], limit=8) == [("other-model", "n")]


def test_the_pool_wide_bound_takes_the_oldest_key_of_all_among_many_workers() -> None:
    clock = Clock()
    index = PrefixIndex(PrefixConfig(max_keys=300, max_keys_per_worker=10), clock)
    for worker in range(300):  # 300 workers, one key each, each a second older than the next
        index.store(f"w{worker}", "m", [worker])
        clock.now += 1
    index.store("w-new", "m", [1000, 1001])
    assert len(index) == 300
    assert index.match("w0", "m", [0]) == 0  # the two oldest of all went
    assert index.match("w1", "m", [1]) == 0
    assert index.match("w2", "m", [2]) == 1
    assert index.holders([1], limit=8) == []


def test_salted_requests_share_no_key_and_router_and_worker_key_them_alike() -> None:
    routing = PrefixRouting(PrefixConfig(isolate_tenants=True))
    first, second = chat(SYSTEM, (pb.ROLE_USER, "hi")), chat(SYSTEM, (pb.ROLE_USER, "hi"))
    routing.isolate(first, "acme")
    routing.isolate(second, "globex")
    assert first.cache_salt == tenant_salt("acme") != second.cache_salt
    assert "acme" not in first.cache_salt  # workers see a hash, not the tenant's name
    routing.index.store("w1", "m", routing.keys(first))
    assert routing.index.match("w1", "m", routing.keys(second)) == 0  # no credit for another tenant's prefix
    assert routing.index.match("w1", "m", routing.keys(first)) == len(routing.keys(first))
    # The worker keys its engine's cache events the same way, so they land on the same tenant's keys.
    assert list(chat_input(first).prefix_keys) == routing.keys(first)
    assert chat_input(first).cache_salt == first.cache_salt
    plain = PrefixRouting(PrefixConfig())
    unsalted = chat(SYSTEM, (pb.ROLE_USER, "hi"))
    plain.isolate(unsalted, "acme")
    assert not unsalted.cache_salt  # off by default: tenants share prefixes
