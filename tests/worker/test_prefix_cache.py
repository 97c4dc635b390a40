"""The worker's translation of engine block events into prefix keys, and the feed every router stream gets."""

from __future__ import annotations

from modelyard.worker.v1 import worker_pb2

from gpu_worker.cache_feed import CacheFeed
from gpu_worker.prefix_cache import Cleared, PrefixCacheTracker, PromptPrefix, Removed, Stored

BLOCK_BYTES = 256
BLOCK_TOKENS = 16


def prefix(keys: int, tokens_per_key: int = 64) -> PromptPrefix:
    """`keys` keys over a prompt of exactly 64 tokens a key (256 bytes at 4 bytes a token)."""
    return PromptPrefix(tuple(range(100, 100 + keys)), keys * BLOCK_BYTES, keys * tokens_per_key)


def kinds(events: list[worker_pb2.CacheEvent]) -> list[tuple[str, list[int]]]:
    out = []
    for event in events:
        kind = event.WhichOneof("event")
        keys = list(getattr(event, kind).keys) if kind != "cleared" else []
        out.append((kind, keys))
    return out


def test_a_key_is_stored_with_the_block_where_its_bytes_end() -> None:
    tracker = PrefixCacheTracker(BLOCK_BYTES)
    tracker.begin("s1", prefix(3))  # keys end at tokens 64, 128, 192: blocks 3, 7 and 11
    first = tracker.translate([Stored([1, 2, 3, 4], None, BLOCK_TOKENS, "s1")])
    assert kinds(first) == [("stored", [100])]
    rest = tracker.translate([Stored([5, 6, 7, 8, 9, 10, 11, 12], 4, BLOCK_TOKENS, "s1")])
    assert kinds(rest) == [("stored", [101, 102])]
    assert sorted(tracker.held()) == [100, 101, 102]
    # Evicting a block removes the keys that end in it; a block holding none says nothing.
    assert kinds(tracker.translate([Removed([12]), Removed([5])])) == [("removed", [102])]
    assert kinds(tracker.translate([Cleared()])) == [("cleared", [])]
    assert tracker.held() == []


def test_blocks_of_unknown_sequences_and_sessions_are_skipped() -> None:
    tracker = PrefixCacheTracker(BLOCK_BYTES)
    assert tracker.translate([Stored([7], 999, BLOCK_TOKENS, "s1")]) == []  # parent never seen
    assert tracker.translate([Stored([1, 2, 3, 4], None, BLOCK_TOKENS, "other")]) == []  # not our request
    tracker.begin("s2", prefix(1))
    # The same blocks reused by a later request of ours (vLLM reports cache hits as stored again).
    assert kinds(tracker.translate([Stored([1, 2, 3, 4], None, BLOCK_TOKENS, "s2")])) == [("stored", [100])]
    assert kinds(tracker.translate([Stored([1, 2, 3, 4], None, BLOCK_TOKENS, "s2")])) == [("stored", [100])]


def test_byte_offsets_map_to_tokens_in_proportion() -> None:
    tracker = PrefixCacheTracker(BLOCK_BYTES)
    # Two keys over 512 bytes that tokenised to 80 tokens: they end at tokens 40 and 80 (blocks 2 and 4).
    tracker.begin("s1", PromptPrefix((1, 2), 512, 80))
    events = tracker.translate([Stored([10, 11, 12], None, BLOCK_TOKENS, "s1")])
    assert kinds(events) == [("stored", [1])]
    assert kinds(tracker.translate([Stored([13, 14], 12, BLOCK_TOKENS, "s1")])) == [("stored", [2])]


def test_tracking_is_bounded() -> None:
    tracker = PrefixCacheTracker(BLOCK_BYTES, max_blocks=8, max_requests=2)
    for session in range(5):
        tracker.begin(f"s{session}", PromptPrefix((session,), BLOCK_BYTES, 64))
    assert tracker.translate([Stored([1, 2, 3, 4], None, BLOCK_TOKENS, "s0")]) == []  # forgotten request
    tracker.translate([Stored(list(range(20, 40)), None, BLOCK_TOKENS, "s4")])
    assert tracker.held() == []  # its key's block (23) was among the oldest dropped to keep 8 blocks
    assert len(tracker._blocks) == 8


async def test_each_subscription_starts_with_a_snapshot_and_resyncs_when_behind() -> None:
    tracker = PrefixCacheTracker(BLOCK_BYTES)
    tracker.begin("s1", prefix(1))
    tracker.translate([Stored([1, 2, 3, 4], None, BLOCK_TOKENS, "s1")])
    feed = CacheFeed({"chat": tracker}, max_pending=3)
    subscription = feed.subscribe()
    snapshot = await subscription.next()
    assert snapshot.model == "chat"
    assert kinds(list(snapshot.events)) == [("cleared", []), ("stored", [100])]
    stored = [worker_pb2.CacheEvent(stored=worker_pb2.PrefixStored(keys=[7]))]
    feed.publish("chat", stored)
    assert kinds(list((await subscription.next()).events)) == [("stored", [7])]
    # More than it may hold: the backlog becomes one fresh snapshot of the tracker, which has applied
    # every event before the feed publishes it, so the snapshot says what the backlog would have.
    tracker.begin("s2", prefix(2))
    for _ in range(4):
        feed.publish("chat", tracker.translate([Stored([1, 2, 3, 4, 5, 6, 7, 8], None, BLOCK_TOKENS, "s2")]))
    resync = await subscription.next()
    assert kinds(list(resync.events)) == [("cleared", []), ("stored", [100, 101])]
    subscription.close()
    feed.publish("chat", stored)
    assert feed.snapshot()[0].model == "chat"
