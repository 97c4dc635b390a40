"""`modelyard up`: a router in this process and one local GPU worker beside it, until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from typing import Any

from modelyard_client import AsyncClient, DeadlineExceeded, RouterStatus, Unavailable
from modelyard_client._channel import DEFAULT_ADDRESS
from modelyard_client.cli._common import UsageError, eprint

WORKER_STOP_TIMEOUT_S = 60.0  # a worker finishes what it holds before it exits on SIGTERM
ROUTER_GRACE_S = 5.0
_POLL_S = 0.5


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "up",
        help="run a router and one local worker (for a laptop or a single GPU host)",
        description="Run a router in this process and one local GPU worker as a child process.",
    )
    p.add_argument("--config", help="router YAML file (default: $MODELYARD_CONFIG, else built-in defaults)")
    p.add_argument("--listen", default=DEFAULT_ADDRESS, help="router host:port (default: %(default)s)")
    p.add_argument(
        "--chat-model", metavar="ID_OR_PATH", help="the worker's chat model (default: the worker's)"
    )
    p.add_argument("--whisper-model", metavar="NAME_OR_PATH", help="the worker's Whisper model")
    p.add_argument("--embed-model", metavar="PATH", help="the worker's embedding model ('minilm': packaged)")
    p.add_argument("--worker-listen", default="127.0.0.1:0", help="worker host:port (default: %(default)s)")
    p.add_argument(
        "--ready-timeout", type=float, default=900.0, help="seconds to wait for the worker to load its models"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run_until_signal(args))


async def _run_until_signal(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await serve(args, stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def worker_command(router_address: str, args: argparse.Namespace) -> list[str]:
    command = [sys.executable, "-m", "gpu_worker", "--router", router_address, "--listen", args.worker_listen]
    if args.chat_model:
        command += ["--chat-model", args.chat_model]
    if args.whisper_model:
        command += ["--whisper-model", args.whisper_model]
    if args.embed_model:
        command += ["--embed-model", args.embed_model]
    return command


def dial_address(listen: str, port: int) -> str:
    host = listen.rsplit(":", 1)[0]
    # A wildcard is where to listen, not where to dial.
    if host in ("", "0.0.0.0", "[::]"):
        host = "127.0.0.1"
    return f"{host}:{port}"


async def serve(args: argparse.Namespace, stop: asyncio.Event) -> int:
    """Run until `stop` is set or the worker exits; returns the exit status."""
    # Imported here so that the client library and its other commands never load the router.
    from router.config.loader import ConfigError, load_config
    from router.server import RouterServer

    try:
        # The same file and environment `modelyard router` reads (cloud keys, routes, ledger); the flag wins.
        config = load_config(args.config)
        config.listen = args.listen
        server = RouterServer(config)
    except (ConfigError, ValueError) as e:
        raise UsageError(str(e)) from e
    port = await server.start()
    address = dial_address(args.listen, port)
    eprint(f"router listening on {address}; starting a worker")
    # Its own session: a terminal's Ctrl-C reaches only us, and we stop the worker first, in order.
    try:
        worker = await asyncio.create_subprocess_exec(*worker_command(address, args), start_new_session=True)
    except OSError:
        await server.stop(0)
        raise
    try:
        status = await _wait_ready(address, worker, stop, args.ready_timeout)
        if status is None:
            return 0 if stop.is_set() else 1
        print(ready_message(address, args.listen, status), flush=True)
        stopped = asyncio.create_task(stop.wait())
        exited = asyncio.create_task(worker.wait())
        await asyncio.wait({stopped, exited}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        exited.cancel()
        if worker.returncode is not None:
            eprint(f"error: the worker exited with status {worker.returncode}")
            return 1
        eprint("stopping: worker first, then the router")
        return 0
    finally:
        await _stop_worker(worker)
        await server.stop(ROUTER_GRACE_S)


async def _wait_ready(
    address: str, worker: asyncio.subprocess.Process, stop: asyncio.Event, timeout: float
) -> RouterStatus | None:
    """The router's status once a worker has registered; None if stopped, the worker died, or time ran out."""
    deadline = time.monotonic() + timeout
    eprint(f"waiting for the worker (pid {worker.pid}) to load its models and register...")
    async with AsyncClient(address, timeout=5.0) as client:
        while not stop.is_set():
            if worker.returncode is not None:
                eprint(f"error: the worker exited with status {worker.returncode} before registering")
                return None
            if time.monotonic() > deadline:
                eprint(f"error: no worker registered within {timeout:.0f} s")
                return None
            # Transient while the router settles; anything else (a key it refuses) ends the wait.
            with contextlib.suppress(Unavailable, DeadlineExceeded):
                status = await client.status()
                if any(b.kind == "worker" for b in status.backends):
                    return status
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _POLL_S)
    return None


async def _stop_worker(worker: asyncio.subprocess.Process) -> None:
    if worker.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        worker.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(worker.wait(), WORKER_STOP_TIMEOUT_S)
    except TimeoutError:
        eprint(f"the worker did not stop within {WORKER_STOP_TIMEOUT_S:.0f} s; killing it")
        with contextlib.suppress(ProcessLookupError):
            worker.kill()
        await worker.wait()


def ready_message(address: str, listen: str, status: RouterStatus) -> str:
    workers = [b for b in status.backends if b.kind == "worker"]
    served = [m for b in workers for m in b.models]
    chat = next((m.id for m in served if "chat" in m.capabilities), None)
    whisper = next((m.id for m in served if "transcribe" in m.capabilities), None)
    router_flag = "" if listen == DEFAULT_ADDRESS else f" --router {address}"
    lines = [
        f"modelyard ready: router on {address}, worker {', '.join(b.id for b in workers)}"
        f" serving {', '.join(m.id for m in served) or 'no models'}",
        "try:",
    ]
    if chat:
        lines.append(f'  modelyard chat "Say hello in five words"{router_flag} --model {chat}')
    if whisper:
        lines.append(f"  modelyard transcribe speech.wav{router_flag} --model {whisper}")
    lines += [f"  modelyard status{router_flag}", "Ctrl-C stops the worker, then the router."]
    return "\n".join(lines)
