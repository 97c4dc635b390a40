from __future__ import annotations

import pytest

from gpu_worker.app import advertised_address
from gpu_worker.router_pool import RouterTarget, parse_router_targets, resolve


def test_parse_lists_repeats_and_forms() -> None:
    targets = parse_router_targets(["a:1,b:2", "dns:///routers.ns.svc:50051", "[::1]:7", "c", "a:1"])
    assert targets == [
        RouterTarget("a", 1),
        RouterTarget("b", 2),
        RouterTarget("routers.ns.svc", 50051),
        RouterTarget("::1", 7),
        RouterTarget("c", 50051),
    ]


@pytest.mark.parametrize("value", ["", " , ", "host:port"])
def test_parse_rejects_nonsense(value: str) -> None:
    with pytest.raises(ValueError, match="--router"):
        parse_router_targets([value])


async def test_resolve_ip_literal_and_name() -> None:
    assert await resolve(RouterTarget("10.1.2.3", 50051)) == ["10.1.2.3:50051"]
    assert await resolve(RouterTarget("::1", 9)) == ["[::1]:9"]
    # localhost may have both ::1 and 127.0.0.1: one stream to one router, not two.
    assert await resolve(RouterTarget("localhost", 9)) == ["127.0.0.1:9"]


def test_advertised_address() -> None:
    assert advertised_address("127.0.0.1:0", 4321, None) == "127.0.0.1:4321"
    assert advertised_address("0.0.0.0:50061", 50061, None).endswith(":50061")
    assert not advertised_address("0.0.0.0:50061", 50061, None).startswith("0.0.0.0")
    assert advertised_address("0.0.0.0:0", 1, "worker-3.pool:50061") == "worker-3.pool:50061"
