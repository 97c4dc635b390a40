from __future__ import annotations

import pytest

from gpu_worker.main import build_parser, main
from gpu_worker.ready import format_ready_line, parse_ready_line


def test_defaults() -> None:
    args = build_parser().parse_args([])
    assert args.listen == "0.0.0.0:50061"
    assert args.whisper_model == "whisper-tiny.en"
    assert args.chat_model is None
    assert args.embed_model is None
    assert args.grace_seconds == 30.0


def test_bad_router_exits_with_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--router", "host:notaport", "--no-chat", "--no-whisper"]) == 2
    assert "--router" in capsys.readouterr().err


def test_ready_line_round_trip() -> None:
    line = format_ready_line("10.0.0.5:50061", "gpu-7", ["tiny-random-llama", "whisper-tiny.en"])
    ready = parse_ready_line(line + "\n")
    assert ready is not None
    assert ready.address == "10.0.0.5:50061"
    assert ready.worker_id == "gpu-7"
    assert ready.models == ("tiny-random-llama", "whisper-tiny.en")
    assert parse_ready_line("INFO something else") is None


def test_stream_interval_defaults_to_every_token_and_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MODELYARD_STREAM_INTERVAL_MS", raising=False)
    assert build_parser().parse_args([]).stream_interval_ms == 0.0
    monkeypatch.setenv("MODELYARD_STREAM_INTERVAL_MS", "20")
    assert build_parser().parse_args([]).stream_interval_ms == 20.0
    assert build_parser().parse_args(["--stream-interval-ms", "50"]).stream_interval_ms == 50.0


@pytest.mark.parametrize("bad", ["-1", "nan", "inf", "soon"])
def test_a_bad_stream_interval_is_a_usage_error_naming_the_flag(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["--stream-interval-ms", bad])
    assert exit_.value.code == 2
    assert "--stream-interval-ms" in capsys.readouterr().err
