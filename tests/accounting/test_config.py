"""Accounting settings from the YAML file, the environment and flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.accounting.auth import hash_key
from router.config.accounting import ApiKey, Budget, CacheConfig, default_usage_db
from router.config.loader import ConfigError, load_config
from router.main import build_parser, config_from_args


def test_yaml_sections_become_typed_settings(tmp_path: Path) -> None:
    stored = hash_key("k-acme")
    path = tmp_path / "modelyard.yaml"
    path.write_text(
        f"""
keys: [{{tenant: acme, key_sha256: "{stored}"}}]
keys_file: /etc/modelyard/keys.yaml
usage_db: /var/lib/modelyard/usage.sqlite3
budgets:
  acme: {{daily_tokens: 100, monthly_cost_usd: 5}}
  "*": {{daily_cost_usd: 1}}
cache: {{ttl_s: 60, redis_url: "redis://cache:6379/0"}}
metrics_listen: 0.0.0.0:9090
"""
    )
    config = load_config(path, env={})
    assert config.keys == [ApiKey("acme", stored)]
    assert config.keys_file == "/etc/modelyard/keys.yaml"
    assert config.budgets == {
        "acme": Budget(daily_tokens=100, monthly_cost_usd=5),
        "*": Budget(daily_cost_usd=1),
    }
    assert config.cache == CacheConfig(ttl_s=60, redis_url="redis://cache:6379/0")
    assert config.metrics_listen == "0.0.0.0:9090"
    assert config.usage_db == "/var/lib/modelyard/usage.sqlite3"


def test_environment_and_flags_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_config(env={"MODELYARD_USAGE_DB": "postgresql://u@db/x"}).usage_db == "postgresql://u@db/x"
    monkeypatch.delenv("MODELYARD_CONFIG", raising=False)
    monkeypatch.delenv("MODELYARD_USAGE_DB", raising=False)
    args = build_parser().parse_args(["--metrics-listen", "127.0.0.1:9091", "--usage-db", "off"])
    config = config_from_args(args)
    assert (config.metrics_listen, config.usage_db) == ("127.0.0.1:9091", "off")


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ("budgets: {acme: {daily_tokenz: 1}}", "budgets.acme.daily_tokenz: unknown setting"),
        ("keys: [{tenant: acme, key_sha256: secret}]", "keys.0: needs a tenant .*hash-key"),
        ("cache: {size: 1}", "cache.size: unknown setting"),
    ],
)
def test_mistakes_are_config_errors(tmp_path: Path, yaml: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml)
    with pytest.raises(ConfigError, match=message):
        load_config(path, env={})


def test_default_ledger_follows_xdg_data_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", "/data")
    assert default_usage_db() == "/data/modelyard/usage.sqlite3"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_usage_db().endswith("/.local/share/modelyard/usage.sqlite3")
