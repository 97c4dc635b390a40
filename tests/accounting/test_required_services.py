"""A system package a test needs (PostgreSQL, Redis, ...) missing: a skip on a developer's machine, a failure
under CI=true, where .ci/run installs it and a broken install step must not pass as a quiet skip."""

from __future__ import annotations

import pytest

from tests.support import system_tools


@pytest.fixture
def no_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(system_tools.SystemTool, "present", lambda tool: tool.name != "redis-server")


@pytest.mark.parametrize("ci", ["true", "1"])
def test_a_missing_service_fails_under_ci(monkeypatch: pytest.MonkeyPatch, no_redis: None, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="missing: redis-server \\(package redis-server"):
        system_tools.require("redis-server")


@pytest.mark.parametrize("ci", [None, "", "false"])
def test_a_missing_service_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, no_redis: None, ci: str | None
) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="redis-server"):
        system_tools.require("redis-server")
    system_tools.require("initdb")  # present tools pass through
