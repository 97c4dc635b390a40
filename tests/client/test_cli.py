"""The `modelyard` command line, run through main() against the Router test double."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import sys
import threading
import types
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import cast

import pytest
from modelyard.v1 import inference_pb2 as pb
from modelyard_client import cli
from modelyard_client.cli import main, server_commands

from tests.client.router_double import RouterDouble
from tests.support.polling import wait_until_sync

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_chat_prints_tokens_then_usage_on_stderr(
    double: RouterDouble, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "chat",
            "hi there",
            "--router",
            address,
            "--model",
            "qwen",
            "--max-tokens",
            "9",
            "--temperature",
            "0.5",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0
    assert out == "Hello, world\n"
    assert "model qwen on double" in err
    assert "1 prompt + 3 completion tokens" in err
    (request,) = double.chat_requests
    assert request.sampling.max_tokens == 9
    assert request.messages[0].content[0].text == "hi there"


def test_chat_json_lines(double: RouterDouble, address: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["chat", "hi", "--router", address, "--json", "--provider", "gpu-a", "--strategy", "latency"])
        == 0
    )
    out, err = capsys.readouterr()
    lines = json_lines(out)
    assert lines[:3] == [{"delta": "Hello"}, {"delta": ", "}, {"delta": "world"}]
    usage = lines[3]["usage"]
    assert isinstance(usage, dict)
    assert (usage["backend"], usage["completion_tokens"]) == ("double", 3)
    assert err == ""
    routing = double.chat_requests[0].routing
    assert (routing.provider, routing.strategy) == ("gpu-a", pb.STRATEGY_LATENCY)


def test_chat_reads_the_prompt_from_stdin(
    double: RouterDouble, address: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("from a pipe\n"))
    assert main(["chat", "-", "--router", address, "--system", "terse"]) == 0
    messages = double.chat_requests[0].messages
    assert [m.content[0].text for m in messages] == ["terse", "from a pipe\n"]


def test_chat_attaches_images(
    double: RouterDouble, address: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cat.png").write_bytes(PNG)
    args = ["chat", "what is it?", "--router", address, "--image", str(tmp_path / "cat.png")]
    assert main([*args, "--image", "https://example.com/dog.jpg"]) == 0
    parts = double.chat_requests[0].messages[0].content
    assert parts[1].image.mime_type == "image/png"
    assert parts[2].image.url == "https://example.com/dog.jpg"


def test_router_address_and_api_key_from_the_environment(
    double: RouterDouble, address: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MODELYARD_ROUTER", address)
    monkeypatch.setenv("MODELYARD_API_KEY", "env-key")
    assert main(["models"]) == 0
    assert main(["models", "--api-key", "flag-key"]) == 0
    assert [m["authorization"] for m in double.metadata] == ["Bearer env-key", "Bearer flag-key"]


def test_server_errors_exit_1_with_code_and_message(
    double: RouterDouble, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["chat", "hi", "--router", address, "--model", "error:NOT_FOUND"]) == 1
    assert capsys.readouterr().err == "error: NOT_FOUND: the double was asked for NOT_FOUND\n"
    assert main(["chat", "hi", "--router", address, "--model", "error-after:UNAVAILABLE"]) == 1
    out, err = capsys.readouterr()
    assert out == "Hello"  # what arrived before the failure stays printed
    assert err.endswith("error: UNAVAILABLE: the double was asked for UNAVAILABLE\n")


def test_an_unreachable_router_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--router", "127.0.0.1:1", "--timeout", "5"]) == 1
    assert capsys.readouterr().err.startswith("error: UNAVAILABLE: ")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["chat"],
        ["chat", "hi", "--temperature", "hot"],
        ["nonsense"],
        ["transcribe", "/no/such/file.wav"],
        ["chat", "hi", "--image", "/no/such/picture.png"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "error" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("chat", "transcribe", "models", "status", "usage", "up", "router", "worker"):
        assert command in out


def test_ctrl_c_during_a_chat_cancels_the_call_and_exits_130(
    double: RouterDouble, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    printed = cast(io.StringIO, sys.stdout)  # capsys's buffer, which this thread can read too

    def interrupt() -> None:
        # After the first token the double holds the stream open; once main() has printed it, it waits
        # for the next one, which is where a user's Ctrl-C lands.
        wait_until_sync(lambda: "Hello" in printed.getvalue())
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    assert main(["chat", "hi", "--router", address, "--model", "slow"]) == 130
    assert double.cancelled.wait(60)  # a bound for a broken build, not a speed requirement
    assert capsys.readouterr().out == "Hello"


def test_transcribe_prints_segments_with_timestamps(
    double: RouterDouble, address: str, wav_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["transcribe", str(wav_file), "--router", address, "--language", "en"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "[0.00-1.00] chunk 1 of 3",
        "[1.00-2.00] chunk 2 of 3",
        "[2.00-3.00] chunk 3 of 3",
    ]
    assert "language en" in err
    assert "5.0 s audio" in err
    assert double.audio_chunks == [65536, 65536, wav_file.stat().st_size - 2 * 65536]


def test_transcribe_words_and_json(
    double: RouterDouble, address: str, wav_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["transcribe", str(wav_file), "--router", address, "--words"]) == 0
    assert "    [0.00-0.50] chunk (0.75)" in capsys.readouterr().out
    assert main(["transcribe", str(wav_file), "--router", address, "--json", "--model", "whisper-x"]) == 0
    lines = json_lines(capsys.readouterr().out)
    assert [next(iter(line)) for line in lines] == ["info", "segment", "segment", "segment", "usage"]
    assert lines[1]["segment"] == {
        "id": 0,
        "start": 0.0,
        "end": 1.0,
        "text": " chunk 1 of 3",
        "words": [],
        "avg_logprob": 0.0,
        "no_speech_prob": 0.0,
    }
    assert double.transcribe_configs[-1].model == "whisper-x"


def test_transcribe_reads_stdin(
    double: RouterDouble,
    address: str,
    wav_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(wav_file.read_bytes())))
    assert main(["transcribe", "-", "--router", address]) == 0
    assert len(double.audio_chunks) == 3


def test_transcribe_server_error(
    double: RouterDouble, address: str, wav_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["transcribe", str(wav_file), "--router", address, "--model", "error:INVALID_ARGUMENT"]) == 1
    assert capsys.readouterr().err == "error: INVALID_ARGUMENT: the double was asked for INVALID_ARGUMENT\n"


def test_models(double: RouterDouble, address: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--router", address]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "MODEL            CAPABILITIES  BACKENDS",
        "qwen-small       chat          gpu-a, gpu-b",
        "whisper-tiny.en  transcribe    gpu-a",
    ]
    assert main(["models", "--router", address, "--json"]) == 0
    (doc,) = json_lines(capsys.readouterr().out)
    assert doc["models"] == [
        {"id": "qwen-small", "capabilities": ["chat"], "backends": ["gpu-a", "gpu-b"]},
        {"id": "whisper-tiny.en", "capabilities": ["transcribe"], "backends": ["gpu-a"]},
    ]


def test_status(double: RouterDouble, address: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--router", address]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[0]
        == "router double-router  version 9.9.9  up 1h02m  strategy composite (load 2, success_rate 3)"
    )
    assert [line.split() for line in lines[1:]] == [
        ["BACKEND", "KIND", "STATE", "CIRCUIT", "ENABLED", "PRIO", "SUCCESS", "SCORE", "IN-FLIGHT", "MODELS"],
        ["gpu-a", "worker", "healthy", "closed", "yes", "100", "98%", "8.50", "3/8", "qwen-small"],
        ["openai", "openai", "draining", "open", "no", "10", "20%", "-", "0", "gpt-4o-mini"],
        ["openai:", "last", "error:", "429", "rate", "limited"],
    ]
    assert main(["status", "--router", address, "--wide"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:4] == ["BACKEND", "KIND", "ADDRESS", "STATE"]
    assert lines[2].split()[2] == "10.0.0.5:50061"
    assert lines[-2:] == [
        "gpu-a: score 8.50 from load 0.75, success_rate 0.98",
        "openai: last error: 429 rate limited",
    ]
    assert main(["status", "--router", address, "--json"]) == 0
    (doc,) = json_lines(capsys.readouterr().out)
    assert doc["router_id"] == "double-router"
    assert (doc["strategy"], doc["weights"]) == ("composite", {"load": 2.0, "success_rate": 3.0})
    backends = doc["backends"]
    assert isinstance(backends, list)
    assert backends[0]["load"]["kv_cache_usage"] == 0.25
    assert backends[0]["score_components"] == {"load": 0.75, "success_rate": 0.98}
    assert backends[1]["load"] is None
    assert (backends[1]["circuit"], backends[1]["enabled"], backends[1]["failures"]) == ("open", False, 4)


def test_status_colour_only_on_a_terminal(
    double: RouterDouble, address: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert main(["status", "--router", address]) == 0
    out = capsys.readouterr().out
    assert "\x1b[31mopen\x1b[0m" in out  # the open circuit in red
    assert "\x1b[32mhealthy\x1b[0m" in out
    # Padding comes after the colour codes: columns still line up by their visible text.
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out).splitlines()
    assert plain[1].index("CIRCUIT") == plain[2].index(" closed ") + 1 == plain[3].index(" open ") + 1
    monkeypatch.setenv("NO_COLOR", "1")
    assert main(["status", "--router", address]) == 0
    assert "\x1b[" not in capsys.readouterr().out


def test_usage(double: RouterDouble, address: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["usage", "--router", address, "--days", "7", "--tenant", "acme"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "usage over the last 7 days, tenant acme"
    assert lines[1].split()[:3] == ["BACKEND", "MODEL", "CALLS"]
    assert lines[2].split() == [
        "gpu-a",
        "qwen-small",
        "40",
        "98%",
        "1200",
        "3400",
        "$0.0000",
        "120ms",
        "450ms",
        "900ms",
        "2",
    ]
    assert lines[-1] == "42 calls, $0.0125 in all"
    assert main(["usage", "--router", address, "--json"]) == 0
    (doc,) = json_lines(capsys.readouterr().out)
    assert (doc["days"], doc["tenant"]) == (1, "")
    assert main(["usage", "--router", address, "--days", "0"]) == 2
    assert main(["usage", "--router", address, "--tenant", "error:PERMISSION_DENIED"]) == 1
    assert capsys.readouterr().err.endswith(
        "error: PERMISSION_DENIED: the double was asked for PERMISSION_DENIED\n"
    )


def test_the_server_commands_come_from_the_installed_entry_points() -> None:
    # Needs the package installed (`make install`): the CLI learns of the server commands from its metadata.
    assert {name: command.target for name, command in server_commands().items()} == {
        "router": "router.main:main",
        "worker": "gpu_worker.main:main",
        "up": "router.up:main",
    }


def test_without_server_packages_only_the_client_commands_are_offered(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "entry_points", lambda group: [])
    assert main(["--help"]) == 0
    assert "worker" not in capsys.readouterr().out
    assert main(["worker"]) == 2
    assert "invalid choice: 'worker'" in capsys.readouterr().err


def test_a_command_whose_package_is_not_installed_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    # The worker image installs the package metadata but not router/: `modelyard worker` must still work.
    group = "modelyard.commands"
    installed = [
        EntryPoint("router", "router_not_in_this_image.commands:ROUTER", group),
        EntryPoint("worker", "gpu_worker.commands:WORKER", group),
    ]
    monkeypatch.setattr(cli, "entry_points", lambda group: installed)
    assert set(server_commands()) == {"worker"}


@pytest.mark.parametrize(
    ("command", "module"), [("router", "router.main"), ("worker", "gpu_worker.main"), ("up", "router.up")]
)
def test_server_commands_hand_their_arguments_over(
    command: str, module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    received: list[list[str]] = []

    def server_main(argv: list[str] | None = None) -> int:
        received.append(list(argv or []))
        return 3

    fake = types.ModuleType(module)
    fake.main = server_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module, fake)
    assert main([command, "--listen", "0.0.0.0:1", "--help"]) == 3
    assert received == [["--listen", "0.0.0.0:1", "--help"]]
