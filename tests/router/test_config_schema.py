"""The config is checked against the settings: wrong types, unknown keys and bad values are refused in one line
naming the field and the file, never a traceback; `modelyard router check-config FILE` checks without starting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from router.config.loader import ConfigError, load_config

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('cache: {ttl_s: "five minutes"}', "cache.ttl_s: expected a number, got 'five minutes'"),
        ('retry: {max_attempts: "three"}', "retry.max_attempts: expected a whole number, got 'three'"),
        ("retry: {max_attempts: 0}", "retry.max_attempts: Input should be greater than 0"),
        ("retry: {max_attemps: 3}", "retry.max_attemps: unknown setting"),
        ("grace_seconds: -1", "grace_seconds: Input should be greater than or equal to 0"),
        ("budget_low_fraction: 2", "budget_low_fraction: Input should be less than or equal to 1"),
        ("budgets: {acme: {daily_tokens: lots}}", "budgets.acme.daily_tokens: expected a whole number"),
        ("prefix: {block_bytes: 2}", "prefix.block_bytes: must be at least 16"),
        ("listen: [a, b]", "listen: expected a string"),
        ("colour:", "colour: unknown setting"),
        ("providers: {openai: {priority: high}}", "providers.openai.priority: expected a whole number"),
        ("providers: {openai: {timeout_s: 0}}", "providers.openai.timeout_s: Input should be greater than 0"),
        ("providers: {openai: [1]}", "providers.openai: expected a mapping"),
    ],
)
def test_each_mistake_is_one_line_naming_the_field_and_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as error:
        load_config(path, env={})
    assert str(error.value).startswith(f"config file {path}: ")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_numbers_written_as_strings_are_still_numbers(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text('retry: {max_attempts: "5"}\ncache: {ttl_s: "90"}\nbudgets:\n')
    config = load_config(path, env={})
    assert (config.retry.max_attempts, config.cache.ttl_s, config.budgets) == (5, 90.0, {})


def test_secret_values_are_not_echoed(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text("cache: {redis_url: [redis://:hunter2@cache:6379]}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path, env={})
    assert "cache.redis_url" in str(error.value)
    assert "hunter2" not in str(error.value)


def test_a_yaml_syntax_error_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text("retry: {max_attempts: 3\nlisten: x\n")
    with pytest.raises(ConfigError) as error:
        load_config(path, env={})
    assert "\n" not in str(error.value)
    assert str(path) in str(error.value)


def _router(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELYARD_", "OPENAI_", "ANTHROPIC_"))}
    return subprocess.run(
        [sys.executable, "-m", "router", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_config_refuses_a_bad_file_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text('cache: {ttl_s: "five minutes"}\n')
    done = _router("check-config", str(path))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert "cache.ttl_s" in done.stderr
    assert str(path) in done.stderr
    assert "Traceback" not in done.stderr


def test_check_config_accepts_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text("strategy: latency\nretry: {max_attempts: 2}\ngrace_seconds: 10\n")
    done = _router("check-config", str(path))
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout


def test_check_config_refuses_an_unknown_strategy(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text("strategy: fastest\n")
    done = _router("check-config", str(path))
    assert done.returncode == 1
    assert "fastest" in done.stderr
    assert "Traceback" not in done.stderr


def test_router_with_a_bad_file_exits_before_listening_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text('retry: {max_attempts: "three"}\n')
    done = _router("--config", str(path), "--listen", "127.0.0.1:0")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"modelyard router: config file {path}: retry.max_attempts: expected a whole number, got 'three'"
    ]
