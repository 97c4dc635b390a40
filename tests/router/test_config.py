"""Configuration: file, environment over it; providers from keys alone; secrets stay out of reprs."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.config.loader import ConfigError, load_config


def test_no_file_enables_providers_whose_keys_are_set() -> None:
    config = load_config(env={"OPENAI_API_KEY": "sk-test-1", "ANTHROPIC_API_KEY": "sk-ant-2"})
    by_name = {p.name: p for p in config.providers}
    assert set(by_name) == {"openai", "anthropic"}
    assert by_name["openai"].chat_models  # preset defaults
    assert by_name["anthropic"].api_key == "sk-ant-2"
    assert "sk-ant-2" not in repr(config)


def test_no_keys_no_providers() -> None:
    assert load_config(env={}).providers == []


def test_file_then_environment(tmp_path: Path) -> None:
    path = tmp_path / "modelyard.yaml"
    path.write_text(
        """
strategy: cost_optimized
routes: {fast: [anthropic/claude-haiku-4-5, openai/gpt-4o-mini]}
tasks: {code: fast}
providers:
  openai: {priority: 5}
  local: {kind: openai_compatible, base_url: "http://127.0.0.1:8000/v1", chat_models: [llama], api_key_env: LOCAL_KEY}
"""
    )
    config = load_config(
        path, env={"OPENAI_API_KEY": "k1", "LOCAL_KEY": "k2", "MODELYARD_STRATEGY": "latency"}
    )
    assert config.strategy == "latency"
    assert config.routes["fast"][0] == "anthropic/claude-haiku-4-5"
    openai, local = config.providers
    assert (openai.kind, openai.priority, openai.api_key) == ("openai", 5, "k1")
    assert (local.base_url, local.chat_models, local.api_key) == ("http://127.0.0.1:8000/v1", ["llama"], "k2")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour: blue", "unknown setting"),
        ("providers: {x: {kind: nope}}", "unknown kind"),
        ("providers: {openai: {api_key: sk-live}}", "keep secrets out"),
        ("providers: {openai: {temperature: 1}}", "unknown setting"),
        ("- a list", "mapping"),
    ],
)
def test_bad_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as error:
        load_config(path, env={})
    assert "sk-live" not in str(error.value)
