"""Prefix-aware routing: a conversation goes back to its worker, unless that worker is busy; clouds unaffected."""

from __future__ import annotations

from pathlib import Path

import pytest
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2_grpc

from router.backends.base import ModelSpec
from router.backends.factory import create_backend
from router.backends.worker import WorkerBackend
from router.config.loader import ConfigError, load_config
from router.config.settings import PrefixConfig, ProviderConfig, RouterConfig
from router.routing.scheduler import Scheduler
from router.routing.state import RoutingState
from router.server import RouterServer
from tests.router.conftest import WorkerFactory
from tests.support.echo_worker import EchoWorker
from tests.support.polling import wait_until

SYSTEM = "You answer questions about the Modelyard router. " * 30  # ~1.5 kB: six 256-byte blocks


def conversation(*user_turns: str, model: str = "echo") -> pb.ChatRequest:
    messages = [pb.Message(role=pb.ROLE_SYSTEM, content=[pb.ContentPart(text=SYSTEM)])]
    for turn in user_turns:
        if len(messages) > 1:
            messages.append(pb.Message(role=pb.ROLE_ASSISTANT, content=[pb.ContentPart(text="noted " * 20)]))
        messages.append(pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=turn)]))
    return pb.ChatRequest(model=model, messages=messages)


def worker(name: str, capacity: int = 10) -> WorkerBackend:
    return WorkerBackend(
        id=name,
        kind="worker",
        models=[ModelSpec("m", frozenset({pb.CAPABILITY_CHAT}))],
        max_concurrency=capacity,
    )


def pool(*backends: WorkerBackend, prefix: PrefixConfig | None = None) -> tuple[Scheduler, RoutingState]:
    state = RoutingState(RouterConfig(prefix=prefix or PrefixConfig()))
    for backend in backends:
        state.registry.add(backend)
    return Scheduler(state), state


def plan(scheduler: Scheduler, state: RoutingState, request: pb.ChatRequest) -> str:
    ranked = scheduler.plan(
        "m", pb.CAPABILITY_CHAT, pb.RoutingHints(), prefix_keys=lambda: state.prefixes.keys(request)
    )
    return ranked[0].backend.id


def test_the_next_turn_goes_to_the_worker_that_served_the_last() -> None:
    a, b, c = worker("a"), worker("b"), worker("c")
    scheduler, state = pool(a, b, c)
    # The first turn lands on c, the worker ties would never pick (they break by id: a first), because
    # a and b are busier then. Afterwards all three are idle and alike: only c's cached prefix sets it apart.
    a.in_flight = b.in_flight = 1
    assert plan(scheduler, state, conversation("Which scorers are there?", model="m")) == "c"
    a.in_flight = b.in_flight = 0
    for turn in range(2, 6):
        turns = [f"question {i}" for i in range(turn)]
        assert plan(scheduler, state, conversation(*turns, model="m")) == "c"


@pytest.mark.parametrize(
    ("settings", "stays_at", "leaves_at"),
    [
        # Absolute: at or above busy_threshold (here 50 %), whatever the others' load.
        (PrefixConfig(busy_threshold=0.5, imbalance_margin=1.0, imbalance_ratio=100), 4, 5),
        # Relative: more than imbalance_margin (30 points) above the least loaded candidate.
        (PrefixConfig(busy_threshold=1.0, imbalance_margin=0.3, imbalance_ratio=100), 3, 4),
        # In requests: imbalance_ratio (3) times the least busy candidate's requests plus one.
        (PrefixConfig(busy_threshold=1.0, imbalance_margin=1.0, imbalance_ratio=3), 2, 3),
    ],
)
def test_a_busy_holder_gets_no_prefix_credit_and_the_least_loaded_takes_it(
    settings: PrefixConfig, stays_at: int, leaves_at: int
) -> None:
    a, b, c = worker("a"), worker("b"), worker("c")
    scheduler, state = pool(a, b, c, prefix=settings)
    holder = plan(scheduler, state, conversation("first", model="m"))
    held = state.registry.get(holder)
    assert held is not None
    held.in_flight = stays_at  # busy, but not too busy: its cache still wins over idle workers
    assert plan(scheduler, state, conversation("first", "second", model="m")) == holder
    held.in_flight = leaves_at
    others = [w for w in (a, b, c) if w is not held]
    others[0].in_flight = 1
    ranked = scheduler.plan(
        "m",
        pb.CAPABILITY_CHAT,
        pb.RoutingHints(),
        prefix_keys=lambda: state.prefixes.keys(conversation("first", "second", "third", model="m")),
    )
    assert ranked[0].backend is others[1]  # the idlest, not the holder
    assert ranked[-1].backend is held
    assert all(c.components["prefix"] == 0.0 for c in ranked)


def test_clouds_score_neutral_and_keep_their_order() -> None:
    state = RoutingState(RouterConfig())
    for name, priority in (("cloud-a", 10), ("cloud-b", 20)):
        config = ProviderConfig(
            name=name,
            kind="openai_compatible",
            api_key="unused",
            base_url="http://127.0.0.1:9/v1",
            chat_models=["gpt"],
            priority=priority,
        )
        state.registry.add(create_backend(config))
    scheduler = Scheduler(state)
    asked: list[bool] = []

    def keys() -> list[int]:
        asked.append(True)
        return [1, 2, 3]

    with_prefix = scheduler.plan("gpt", pb.CAPABILITY_CHAT, pb.RoutingHints(), prefix_keys=keys)
    without = scheduler.plan("gpt", pb.CAPABILITY_CHAT, pb.RoutingHints())
    assert not asked  # no candidate keeps a prefix cache: the request is not even hashed
    assert [c.components["prefix"] for c in with_prefix] == [0.0, 0.0]
    assert [c.backend.id for c in with_prefix] == [c.backend.id for c in without] == ["cloud-a", "cloud-b"]
    assert len(state.prefixes.index) == 0


async def chat(stub: router_pb2_grpc.RouterServiceStub, request: pb.ChatRequest) -> str:
    backend = ""
    async for response in stub.Chat(request):
        if response.HasField("usage"):
            backend = response.usage.backend
    return backend


async def test_conversation_sticks_to_its_worker_through_the_router(
    router: RouterServer, stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory
) -> None:
    for name in ("w1", "w2", "w3"):
        await echo_workers(name)
    # The first turn is sent to w3, the worker ties would never pick (they break by id: w1 first); the
    # later turns name no provider, and only the prefix the router recorded on w3 can bring them back there.
    opening = conversation("How does failover work?")
    opening.routing.provider = "w3"
    assert await chat(stub, opening) == "w3"
    assert router.state.prefixes.index.keys_held("w3") > 0
    for turn in range(2, 5):
        assert await chat(stub, conversation(*(f"turn {i}" for i in range(turn)))) == "w3"


async def test_a_worker_that_restarts_or_leaves_starts_with_an_empty_prefix_view(
    router: RouterServer, stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory
) -> None:
    first = await echo_workers("w1")
    await chat(stub, conversation("hello"))
    index = router.state.prefixes.index
    assert index.keys_held("w1") > 0
    # A new process under the same id, on the same address, says hello while the old lease is still open
    # (from another address it would be refused: ALREADY_EXISTS, see tests/security).
    restarted = EchoWorker("w1")
    await restarted.start()
    restarted.port = first.port
    try:
        await restarted.register(router.address)
        await wait_until(lambda: index.keys_held("w1") == 0)
        await chat(stub, conversation("hello"))
        assert index.keys_held("w1") > 0
        await restarted.unregister()  # the lease ends: the worker leaves the pool
        await wait_until(lambda: router.registry.get("w1") is None)
        assert index.keys_held("w1") == 0
    finally:
        await restarted.stop()


def test_prefix_settings_load_from_the_config_file_and_are_checked(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("prefix: {max_keys: 1000, max_age_s: 30, busy_threshold: 0.9}\n")
    bad.write_text("prefix: {busy_threshold: 2}\n")
    config = load_config(good, env={})
    assert (config.prefix.max_keys, config.prefix.max_age_s, config.prefix.busy_threshold) == (1000, 30, 0.9)
    with pytest.raises(ConfigError, match=r"prefix\.busy_threshold"):
        load_config(bad, env={})
