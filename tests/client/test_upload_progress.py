"""`modelyard transcribe` shows upload progress on a terminal, and nothing in a pipe."""

from __future__ import annotations

import io
from pathlib import Path

from modelyard_client.cli._upload_progress import upload_progress
from rich.console import Console


def test_a_file_upload_draws_a_bar_on_a_terminal_and_reads_the_same_bytes(tmp_path: Path) -> None:
    audio = tmp_path / "speech.wav"
    audio.write_bytes(bytes(range(256)) * 1000)
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=100)
    with audio.open("rb") as source, upload_progress(source, terminal) as upload:
        read = b"".join(iter(lambda: upload.read(64 * 1024), b""))
    assert read == audio.read_bytes()
    assert "uploading" in screen.getvalue()


def test_no_terminal_or_no_known_size_means_no_bar(tmp_path: Path) -> None:
    audio = tmp_path / "speech.wav"
    audio.write_bytes(b"RIFF" * 10)
    with audio.open("rb") as source, upload_progress(source, None) as upload:
        assert upload is source  # a pipe: the file as it is
    piped = io.BytesIO(b"RIFF")  # stdin or a pipe: no size to measure against
    screen = io.StringIO()
    with upload_progress(piped, Console(file=screen, force_terminal=True)) as upload:
        assert upload is piped
    assert screen.getvalue() == ""
