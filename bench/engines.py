"""Engines on this machine's hardware: vLLM tokens/s through the router, straight to the worker, and vLLM
alone (the same AsyncLLM settings, no gRPC); Whisper's real-time factor through the router.

Full mode only. The worker is the real `python -m gpu_worker` (started by tests/worker/process.py);
if it cannot start, the section says why instead of giving figures. BENCH_CHAT_MODEL names a real
chat model for GPU hosts; the default is the worker's tiny random model.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2, router_pb2_grpc
from modelyard.worker.v1 import worker_pb2_grpc

from bench.load import chat_request
from bench.processes import spawn
from bench.report import Report, Table, Target
from bench.router_proc import RouterOptions, router_child

CONCURRENCY, TOKENS = 8, 64
ROUNDS = 9  # per path, taking turns; the median is reported (one round lasts about 0.7 s on 2 CPU cores)
REPO = Path(__file__).resolve().parents[1]
_ALONE = """
import asyncio, json, sys, time
from gpu_worker.engine_env import apply_engine_env_defaults
apply_engine_env_defaults([sys.argv[1]] if sys.argv[1] else [])  # the worker's own settings, before vLLM loads
from vllm import SamplingParams
from vllm.sampling_params import RequestOutputKind
from gpu_worker.engines.vllm_setup import start_async_llm, shutdown_async_llm
from gpu_worker.tiny_model import TINY_MODEL_ID, ensure_tiny_chat_model
model = sys.argv[1] or str(ensure_tiny_chat_model())
n, tokens, rounds = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
async def main():
    engine = start_async_llm(model, sys.argv[1] or TINY_MODEL_ID, runner="generate", max_num_seqs=16)
    params = SamplingParams(max_tokens=tokens, output_kind=RequestOutputKind.DELTA)
    async def one(rid):
        count = 0
        async for out in engine.generate("hello there", params, request_id=rid):
            count += len(out.outputs[0].token_ids)
        return count
    async def round_(tag):
        began = time.perf_counter()
        counts = await asyncio.gather(*(one(f"{tag}-{i}") for i in range(n)))
        return sum(counts) / (time.perf_counter() - began)
    await round_("warm")  # the same shape as what is measured, as the worker paths get
    rates = sorted([await round_(f"r{k}") for k in range(rounds)])
    print(json.dumps({"tokens_per_s": rates[len(rates) // 2]}), flush=True)
    shutdown_async_llm(engine)
if __name__ == "__main__":  # vLLM spawns its engine core, which re-imports this file
    asyncio.run(main())
"""


async def _tokens_per_s(stub: Any, model: str) -> float:
    """One round: CONCURRENCY chats of TOKENS tokens at once, tokens as the usage reports them."""

    async def one() -> int:
        tokens = 0
        async for response in stub.Chat(chat_request(model, TOKENS), timeout=600):
            if response.HasField("usage"):
                tokens = response.usage.completion_tokens
        return tokens

    began = time.perf_counter()
    counts = await asyncio.gather(*(one() for _ in range(CONCURRENCY)))
    return sum(counts) / (time.perf_counter() - began)


async def _both_paths(through: Any, direct: Any, model: str) -> tuple[float, float]:
    """The median of ROUNDS rounds per path, the paths taking turns, after a warm-up round of the same
    shape on each: a round lasts about a second, and neither path gets the engine's first batches or a
    quieter moment of the machine to itself."""
    for stub in (through, direct):
        await _tokens_per_s(stub, model)
    rates: tuple[list[float], list[float]] = ([], [])
    for round_ in range(ROUNDS):
        order = (0, 1) if round_ % 2 == 0 else (1, 0)
        for path in order:
            rates[path].append(await _tokens_per_s((through, direct)[path], model))
    return statistics.median(rates[0]), statistics.median(rates[1])


def _vllm_alone(model: str) -> str:
    try:
        # A file, not `python -c`: the spawned engine core must be able to re-import the script.
        script = Path(tempfile.mkdtemp()) / "vllm_alone.py"
        script.write_text(_ALONE)
        done = subprocess.run(
            [sys.executable, str(script), model, str(CONCURRENCY), str(TOKENS), str(ROUNDS)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "PYTHONPATH": str(REPO), "VLLM_LOGGING_STREAM": "ext://sys.stderr"},
        )
        # vLLM may still log to stdout; the figures are the one JSON line.
        line = next(x for x in reversed(done.stdout.splitlines()) if x.startswith("{"))
        figures = json.loads(line)
        return f"{figures['tokens_per_s']:.1f}"
    except (subprocess.SubprocessError, OSError, ValueError, StopIteration, KeyError) as e:
        return f"could not run vLLM alone: {type(e).__name__}"


# Varied sentences: one sentence repeated sends Whisper into its temperature-fallback loop.
SPEECH = (
    "the quick brown fox jumps over the lazy dog. a stitch in time saves nine. "
    "every cloud has a silver lining. better late than never, but never late is better."
)


async def _registered(router: str, worker_id: str, timeout: float = 60.0) -> None:
    """The worker prints its ready line before its lease with the router is open; wait for the lease."""
    async with grpc.aio.insecure_channel(router) as channel:
        stub = router_pb2_grpc.RouterServiceStub(channel)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            status = await stub.GetStatus(router_pb2.GetStatusRequest())
            if any(b.id == worker_id for b in status.backends):
                return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"worker {worker_id} did not register within {timeout:.0f} s")


async def _chat(router: str, table: Table, report: Report) -> None:
    from tests.worker.process import start_worker

    chat_model = os.environ.get("BENCH_CHAT_MODEL", "")
    # The tiny model unless told otherwise: the same one _vllm_alone measures.
    args = ["--no-whisper", "--worker-id", "bench-vllm", "--chat-model", chat_model or "tiny-random-llama"]
    worker = await start_worker(router, *args, ready_timeout=600)
    try:
        await _registered(router, worker.worker_id)
        model = worker.models[0]
        async with grpc.aio.insecure_channel(router) as rc, grpc.aio.insecure_channel(worker.address) as wc:
            through, direct = await _both_paths(
                router_pb2_grpc.RouterServiceStub(rc), worker_pb2_grpc.WorkerServiceStub(wc), model
            )
    finally:
        await worker.stop()
    alone = await asyncio.to_thread(_vllm_alone, chat_model)
    label = f"vLLM {model}, {CONCURRENCY} concurrent x {TOKENS} tokens"
    table.rows += [
        [label, "through router", f"{through:.1f} tokens/s (median of {ROUNDS} rounds)"],
        [label, "worker direct", f"{direct:.1f} tokens/s (median of {ROUNDS} rounds)"],
        [label, "vLLM alone (AsyncLLM)", f"{alone} tokens/s (median of {ROUNDS} rounds)"],
    ]
    relay = through / direct if direct > 0 else math.nan
    report.targets.append(
        Target(
            "Engines: tokens/s through router vs worker direct",
            "≥ 0.9x",
            f"{relay:.2f}x ({through:.0f} vs {direct:.0f} tokens/s)",
            relay >= 0.9,
        )
    )
    try:
        alone_rate = float(alone)
    except ValueError:  # a reason vLLM alone did not run, already in the table
        return
    report.targets.append(
        Target(
            "Engines: tokens/s worker direct vs vLLM alone",
            "≥ 0.8x",
            f"{direct / alone_rate:.2f}x ({direct:.0f} vs {alone_rate:.0f} tokens/s)",
            direct / alone_rate >= 0.8,
        )
    )


async def _whisper(router: str, table: Table, report: Report) -> None:
    from tests.worker.process import start_worker
    from tests.worker.speech import make_speech_wav, wav_to_pcm_s16le

    with tempfile.TemporaryDirectory() as tmp:
        pcm = wav_to_pcm_s16le(make_speech_wav(Path(tmp), SPEECH))
    audio_s = len(pcm) / 32000
    worker = await start_worker(router, "--no-chat", "--worker-id", "bench-whisper", ready_timeout=600)
    try:
        await _registered(router, worker.worker_id)
        model = next(m for m in worker.models if "whisper" in m or "tiny" in m)
        config = pb.TranscribeConfig(model=model, encoding=pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000)

        async def requests() -> Any:
            yield pb.TranscribeRequest(config=config)
            yield pb.TranscribeRequest(audio=pcm)

        async with grpc.aio.insecure_channel(router) as channel:
            stub = router_pb2_grpc.RouterServiceStub(channel)
            times = []
            for _ in range(4):
                began = time.perf_counter()
                async for _response in stub.Transcribe(requests(), timeout=600):
                    pass
                times.append(time.perf_counter() - began)
    finally:
        await worker.stop()
    best = min(times[1:])
    table.rows.append(
        [
            f"Whisper {model}, {audio_s:.1f} s of speech",
            "through router",
            f"real-time factor {best / audio_s:.3f} (best of 3 after a warm-up)",
        ]
    )


def run(report: Report) -> None:
    print("bench: engines", flush=True)
    table = Table("Engines", ["engine", "path", "figure"])
    table.notes.append(
        f"Hardware: whatever runs the benchmark (CUDA if present, else vLLM's CPU build); Python {sys.version.split()[0]}."
    )
    router = spawn("engine-router", router_child, RouterOptions())
    try:
        for name, part in (("vLLM", _chat), ("Whisper", _whisper)):
            try:
                asyncio.run(part(str(router.info["address"]), table, report))
            except Exception as e:  # any reason the worker cannot start is reported, never hidden
                table.rows.append(
                    [name, "skipped", f"worker could not start or run: {type(e).__name__}: {str(e)[:200]}"]
                )
    finally:
        router.stop()
    report.tables.append(table)
