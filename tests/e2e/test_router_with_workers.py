"""The foundation end to end: CLI -> router -> real worker engines, and back."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import jsonschema
import pytest
from modelyard.v1 import backend_pb2, router_pb2, router_pb2_grpc
from modelyard.v1 import inference_pb2 as pb
from modelyard_client.cli import main as cli

from router.server import RouterServer
from tests.support.polling import wait_until
from tests.worker.process import WorkerProcess

pytestmark = pytest.mark.engines


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(cli, list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_chat_streams_tokens_then_usage(
    router: RouterServer, engine_worker: WorkerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = await run_cli(
        capsys,
        "chat",
        "hello",
        "--model",
        "tiny-random-llama",
        "--max-tokens",
        "12",
        "--json",
        "--router",
        router.address,
    )
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    deltas = [line["delta"] for line in lines if "delta" in line]
    usage = lines[-1]["usage"]
    assert len(deltas) > 1  # streamed, not one block
    assert usage["backend"] == engine_worker.worker_id
    assert usage["completion_tokens"] == 12
    assert usage["prompt_tokens"] > 0
    assert 0 < usage["ttft_ms"] <= usage["latency_ms"]


async def test_transcribe_prints_the_spoken_words(
    router: RouterServer, engine_worker: WorkerProcess, speech: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = await run_cli(capsys, "transcribe", str(speech), "--router", router.address)
    assert code == 0
    words = out.lower()
    assert sum(word in words for word in ("quick", "brown", "fox", "lazy", "dog")) >= 4


async def test_status_and_models_list_the_worker(
    router: RouterServer, engine_worker: WorkerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = await run_cli(capsys, "status", "--json", "--router", router.address)
    assert code == 0
    backends = json.loads(out)["backends"]
    worker = next(b for b in backends if b["id"] == engine_worker.worker_id)
    assert {m["id"] for m in worker["models"]} >= {"tiny-random-llama", "whisper-tiny.en"}
    code, out, _ = await run_cli(capsys, "models", "--router", router.address)
    assert "tiny-random-llama" in out
    assert "whisper-tiny.en" in out


async def test_bad_audio_and_unknown_model_get_clear_statuses(
    router: RouterServer, engine_worker: WorkerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio at all" * 100)
    code, _, err = await run_cli(capsys, "transcribe", str(junk), "--router", router.address)
    assert code == 1
    assert "INVALID_ARGUMENT" in err
    assert "audio" in err
    code, _, err = await run_cli(capsys, "chat", "hi", "--model", "gpt-9", "--router", router.address)
    assert code == 1
    assert "NOT_FOUND" in err
    assert "tiny-random-llama" in err


async def test_cancelled_chat_frees_the_engine(router: RouterServer, engine_worker: WorkerProcess) -> None:
    async with grpc.aio.insecure_channel(router.address) as channel:
        stub = router_pb2_grpc.RouterServiceStub(channel)
        request = pb.ChatRequest(
            model="tiny-random-llama",
            messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="tell me everything")])],
            sampling=pb.SamplingParams(max_tokens=2000),
        )
        call = stub.Chat(request)
        await call.read()

        async def load() -> backend_pb2.LoadReport:
            status: router_pb2.GetStatusResponse = await stub.GetStatus(router_pb2.GetStatusRequest())
            return next(b for b in status.backends if b.id == engine_worker.worker_id).load

        async def busy() -> bool:
            report = await load()
            return report.running + report.waiting > 0

        await wait_until(busy)
        aborted = (await load()).aborted_total
        call.cancel()

        async def aborted_and_idle() -> bool:
            # Aborted, not finished: the engine counts the abort, and nothing runs on it any more.
            report = await load()
            return report.aborted_total > aborted and report.running + report.waiting == 0

        await wait_until(aborted_and_idle, timeout=60.0, message="the cancelled request was not aborted")


async def test_required_tool_choice_on_a_worker_prints_schema_valid_arguments(
    router: RouterServer, engine_worker: WorkerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 12},  # short: the random model's JSON ends in time
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
        "additionalProperties": False,
    }
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps([{"name": "get_weather", "parameters": schema}]))
    code, out, _ = await run_cli(
        capsys,
        "chat",
        "weather in Paris?",
        "--model",
        "tiny-random-llama",
        "--tools",
        str(tools),
        "--tool-choice",
        "required",
        "--max-tokens",
        "160",
        "--json",
        "--router",
        router.address,
    )
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    calls = [line["tool_call"] for line in lines if "tool_call" in line]
    assert len(calls) == 1
    assert calls[0]["name"] == "get_weather"
    jsonschema.validate(json.loads(calls[0]["arguments"]), schema)
    assert lines[-1]["usage"]["finish_reason"] == "tool_calls"
