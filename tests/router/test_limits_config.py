"""Config `limits:` and `input:`: a default, per-tenant overrides that inherit it, caps, and clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.input_limits import InputLimits
from router.config.limits import LimitsConfig, TenantLimits
from router.config.loader import ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "modelyard.yaml"
    path.write_text(text)
    return path


def test_limits_and_input_from_the_file(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
limits:
  default: {requests_per_minute: 600, tokens_per_minute: 200000}
  tenants:
    acme: {requests_per_minute: 60, concurrent_streams: 4}
  store: redis://:secret@redis:6379/1
  max_uploads: 4
input:
  max_messages: 100
  max_tokens: 8192
  default_max_tokens: 1024
  image_url_hosts: ["*.example.com"]
""",
        ),
        env={},
    )
    limits = config.limits
    # Fields the default leaves out are built in (64 streams); those a tenant leaves out are the default's.
    assert limits.for_tenant("other") == TenantLimits(600, 200_000, 64)
    assert limits.for_tenant("acme") == TenantLimits(60, 200_000, 4)
    assert limits.max_uploads == 4
    assert "secret" not in repr(config)
    assert config.input == InputLimits(
        max_messages=100, max_tokens=8192, default_max_tokens=1024, image_url_hosts=("*.example.com",)
    )


def test_no_file_means_safe_defaults() -> None:
    config = load_config(env={})
    assert config.limits == LimitsConfig()
    assert config.limits.for_tenant("anyone") == TenantLimits(0, 0, 64)  # 0: no limit
    assert config.input.max_messages == 2048
    assert config.input.image_url_schemes == ("https", "data")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("limits: {tenants: {acme: {rpm: 5}}}", "limits.tenants.acme.rpm: unknown setting"),
        ("limits: {default: {requests_per_minute: -1}}", "limits.default.requests_per_minute: "),
        ("limits: {burst: 3}", "limits.burst: unknown setting"),
        ("limits: {max_uploads: 0}", "limits.max_uploads: "),
        ("input: {max_messages: 0}", "input.max_messages: must be at least 1"),
        ("input: {max_mesages: 5}", "input.max_mesages: unknown setting"),
        ("input: {max_tokens: 10, default_max_tokens: 20}", "input.default_max_tokens: must not be above"),
    ],
)
def test_bad_limits_are_refused_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(write(tmp_path, text), env={})
