"""The floor for the router's relay: a pass-through relay in the same stack, with none of the router's work.

The Router service's Chat, forwarded to one worker's Chat as bytes (no decoding or re-encoding, no
authentication, validation, scheduling, failover or accounting), on grpc.aio and the event loop the router
runs on. Whatever it costs is what any Python gRPC relay costs on this machine: one more process reading
and writing every message. The overhead table measures it beside the router, in the same run.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from multiprocessing.connection import Connection
from typing import Any

import grpc

from bench.processes import next_command
from core import event_loop

_SERVICE = "modelyard.v1.RouterService"
_WORKER_CHAT = "/modelyard.worker.v1.WorkerService/Chat"


def _same(data: bytes) -> bytes:
    return data


async def _serve(conn: Connection, worker: str) -> None:
    channel = grpc.aio.insecure_channel(worker)
    upstream = channel.unary_stream(_WORKER_CHAT, request_serializer=_same, response_deserializer=_same)

    async def chat(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[bytes]:
        async for message in upstream(request):
            yield message

    handler = grpc.unary_stream_rpc_method_handler(
        chat, request_deserializer=_same, response_serializer=_same
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(_SERVICE, {"Chat": handler})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    conn.send({"address": f"127.0.0.1:{port}"})
    while await next_command(conn) != "stop":
        conn.send("ok")
    await server.stop(0)
    await channel.close()
    conn.send("stopped")


def bare_relay_child(conn: Connection, worker: str) -> None:
    """Process entry: relay Chat to `worker` until told to stop."""
    logging.basicConfig(level=logging.ERROR)
    event_loop.run(_serve(conn, worker))
