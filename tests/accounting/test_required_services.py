"""PostgreSQL or Redis missing: a skip on a developer's machine, a failure under CI=true."""

from __future__ import annotations

import pytest

from tests.support.required import missing


@pytest.mark.parametrize("ci", ["true", "1"])
def test_a_missing_service_fails_under_ci(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(
        pytest.fail.Exception, match="redis-server not installed: apt-get install redis-server"
    ):
        missing("redis-server", "apt-get install redis-server")


@pytest.mark.parametrize("ci", [None, "", "false"])
def test_a_missing_service_skips_elsewhere(monkeypatch: pytest.MonkeyPatch, ci: str | None) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL binaries"):
        missing("PostgreSQL binaries (initdb, pg_ctl)", "apt-get install postgresql")
