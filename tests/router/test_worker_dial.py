"""The router starts connecting to a worker when it registers, so the first request sent there does not wait
for the TCP and HTTP/2 handshakes (at 1,000 workers most requests would be some worker's first)."""

from __future__ import annotations

import grpc

from router.backends.worker import WorkerBackend
from router.server import RouterServer
from tests.router.conftest import WorkerFactory
from tests.support.polling import wait_until


async def test_a_registered_worker_is_dialled_before_any_request(
    router: RouterServer, echo_workers: WorkerFactory
) -> None:
    await echo_workers("w1")
    worker = router.registry.get("w1")
    assert isinstance(worker, WorkerBackend)

    def connected() -> bool:
        channel = worker._channel  # what the first request will be sent on
        return channel is not None and channel.get_state() == grpc.ChannelConnectivity.READY

    await wait_until(connected)
