"""Which HTTP server for the router's OpenAI door: each candidate in a process of its own, sharing its event
loop with an (idle) grpc.aio server as the router's does, answering an OpenAI-shaped chat at once.

    python -m bench.http_servers [--seconds 3]     (or: python -m bench --only http_servers)

Per candidate: p50/p99 latency of a whole (JSON) answer at concurrency 1, and chunks/s of 64-chunk SSE
streams at concurrency 32, from the same load generator (bench.load) as the overhead table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from multiprocessing.connection import Connection
from typing import Any

import grpc

from bench.load import ChatLoad, LoadResult, load_child
from bench.processes import Child, next_command, spawn
from bench.report import Report, Table, count, ms, percentile
from bench.tokens import TOKEN

_CHUNK = (
    b"data: "
    + json.dumps({"choices": [{"index": 0, "delta": {"content": TOKEN}, "finish_reason": None}]}).encode()
    + b"\n\n"
)


def _answer(tokens: int) -> bytes:
    message = {"role": "assistant", "content": TOKEN * tokens}
    return json.dumps({"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}).encode()


def _frames(tokens: int) -> list[bytes]:
    return [_CHUNK] * tokens + [b"data: [DONE]\n\n"]


async def _aiohttp(sock: socket.socket) -> Callable[[], Any]:
    from aiohttp import web

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        tokens = int(body.get("max_tokens") or 1)
        if not body.get("stream"):
            return web.Response(body=_answer(tokens), content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for frame in _frames(tokens):
            await response.write(frame)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    await web.SockSite(runner, sock, backlog=1024).start()
    return runner.cleanup


async def _starlette(sock: socket.socket) -> Callable[[], Any]:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    async def chat(request: Request) -> Response:
        body = await request.json()
        tokens = int(body.get("max_tokens") or 1)
        if not body.get("stream"):
            return Response(_answer(tokens), media_type="application/json")

        async def frames() -> AsyncIterator[bytes]:
            for frame in _frames(tokens):
                yield frame

        return StreamingResponse(frames(), media_type="text/event-stream")

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    config = uvicorn.Config(app, log_level="error", access_log=False, lifespan="off", backlog=1024)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110  uvicorn offers a flag, not an event
        await asyncio.sleep(0.01)

    async def stop() -> None:
        server.should_exit = True
        await task

    return stop


CANDIDATES = {"aiohttp": _aiohttp, "uvicorn+starlette": _starlette}


async def _serve(conn: Connection, name: str) -> None:
    grpc_server = grpc.aio.server()
    grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    stop = await CANDIDATES[name](sock)
    conn.send({"url": f"http://127.0.0.1:{sock.getsockname()[1]}/v1"})
    while await next_command(conn) != "stop":
        conn.send("ok")
    await stop()
    await grpc_server.stop(0)
    conn.send("stopped")


def server_child(conn: Connection, name: str) -> None:
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(_serve(conn, name))


def run(report: Report, load: Child, seconds: float) -> None:
    """One row per candidate, in the report (`python -m bench --only http_servers`)."""
    table = Table(
        "HTTP door: which server (an OpenAI-shaped answer, each sharing its loop with grpc.aio)",
        ["server", "p50 ms (c=1, JSON)", "p99 ms", "chunks/s (c=32, 64-chunk SSE)"],
    )
    for name in CANDIDATES:
        server = spawn(name, server_child, name)
        url = str(server.info["url"])
        try:
            single: LoadResult = load.request(
                ChatLoad(url, "http", 1, 100_000, seconds, 1, 100), seconds + 60
            )
            streams: LoadResult = load.request(
                ChatLoad(url, "http-stream", 32, 100_000, seconds, 64, 64), seconds + 60
            )
        finally:
            server.stop()
        latencies = [o.total_ms for o in single.ok]
        rate = sum(o.chunks for o in streams.ok) / streams.elapsed_s
        table.rows.append(
            [name, ms(percentile(latencies, 0.5)), ms(percentile(latencies, 0.99)), count(rate)]
        )
    report.tables.append(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http_servers", description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    load = spawn("load-generator", load_child)
    report = Report("http_servers")
    try:
        run(report, load, args.seconds)
    finally:
        load.stop()
    print("\n".join(report.markdown()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
