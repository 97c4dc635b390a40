"""Arbitrary protobuf messages and arbitrary bytes at every RPC of a real router process, Register included:
never INTERNAL or UNKNOWN, never a hang; afterwards the router is healthy and its memory bounded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor as d
from grpc_health.v1 import health_pb2
from hypothesis import event, given
from hypothesis import strategies as st
from modelyard.v1 import accounting_pb2, admin_pb2, router_pb2
from modelyard.worker.v1 import worker_pb2

from tests.fuzz.conftest import RouterProcess
from tests.fuzz.messages import message_bytes, plausible_chat, plausible_embed

SERVICES = (
    router_pb2.DESCRIPTOR.services_by_name["RouterService"],
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"],
    accounting_pb2.DESCRIPTOR.services_by_name["AccountingService"],
    worker_pb2.DESCRIPTOR.services_by_name["WorkerRegistryService"],
    health_pb2.DESCRIPTOR.services_by_name["Health"],
)
METHODS = [method for service in SERVICES for method in service.methods]
CALL_TIMEOUT_S = 15.0  # far beyond any answer the router gives; reaching it is a hang
MAX_RESPONSES = 20  # then hang up: enough of any answer
# Streams that stay open by design (each status change is sent): the first answer shows it works.
OPEN_ENDED = {"grpc.health.v1.Health.Watch"}
# Besides arbitrary messages, ones that pass validation, to get into routing, the relay and accounting.
PLAUSIBLE = {
    "modelyard.v1.RouterService.Chat": (plausible_chat(),),
    "modelyard.v1.RouterService.Embed": (plausible_embed(),),
}
NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED}


def payloads(method: d.MethodDescriptor) -> st.SearchStrategy[list[bytes]]:
    """What a hostile client sends: well-formed messages of the method's type, or any bytes at all."""
    one = st.one_of(
        message_bytes(method.input_type), st.binary(max_size=200), *PLAUSIBLE.get(method.full_name, ())
    )
    if method.client_streaming:
        return st.lists(one, max_size=4)
    return one.map(lambda payload: [payload])


def call(channel: grpc.Channel, method: d.MethodDescriptor, requests: list[bytes]) -> grpc.StatusCode:
    path = f"/{method.containing_service.full_name}/{method.name}"
    kinds = {
        (False, False): channel.unary_unary,
        (False, True): channel.unary_stream,
        (True, False): channel.stream_unary,
        (True, True): channel.stream_stream,
    }
    stub: Any = kinds[(method.client_streaming, method.server_streaming)](path)
    argument: Any = iter(requests) if method.client_streaming else requests[0]
    enough = 1 if method.full_name in OPEN_ENDED else MAX_RESPONSES
    try:
        if method.server_streaming:
            responses: Iterator[bytes] = stub(argument, timeout=CALL_TIMEOUT_S)
            for i, _ in enumerate(responses):
                if i + 1 >= enough:
                    responses.cancel()  # type: ignore[attr-defined]
                    return grpc.StatusCode.OK
        else:
            stub(argument, timeout=CALL_TIMEOUT_S)
    except grpc.RpcError as e:
        code: grpc.StatusCode = e.code()
        if code == grpc.StatusCode.CANCELLED and method.server_streaming:
            return grpc.StatusCode.OK
        if code in NEVER:
            pytest.fail(f"{path}: {code.name}: {e.details()}")
        return code
    return grpc.StatusCode.OK


@pytest.fixture(scope="module")
def channel(router_process: RouterProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(router_process.address) as channel:
        yield channel


@pytest.fixture(scope="module")
def rss_before(router_process: RouterProcess) -> int:
    return router_process.rss_bytes()


@pytest.mark.parametrize("method", METHODS, ids=lambda m: f"{m.containing_service.name}.{m.name}")
def test_every_rpc_survives_arbitrary_input(
    router_process: RouterProcess, channel: grpc.Channel, rss_before: int, method: d.MethodDescriptor
) -> None:
    @given(requests=payloads(method))
    def survives(requests: list[bytes]) -> None:
        event(call(channel, method, requests).name)  # --hypothesis-show-statistics: how deep the calls got

    survives()
    # Checked here, after this method's fuzzing, so the check holds whichever tests run and in what order
    # (rss_before is taken once per module, before the first method is fuzzed).
    assert router_process.serving()
    grown = router_process.rss_bytes() - rss_before
    assert grown < 150 * 2**20, f"router RSS grew by {grown / 2**20:.0f} MiB while fuzzed"
