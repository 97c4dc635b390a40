"""Issue 24 item 11: no password from a base URL reaches a log line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import logs
from router.config.loader import ConfigError, load_config


@pytest.mark.parametrize(
    "url",
    ["http://user:secret@10.0.0.5:8000/v1", "https://secret@llm.example/v1", "http://a:b@[::1]:8000/v1"],
)
def test_userinfo_in_base_url_is_refused_at_load(tmp_path: Path, url: str) -> None:
    file = tmp_path / "router.yaml"
    file.write_text(
        f"providers:\n  local: {{kind: openai_compatible, base_url: '{url}', chat_models: [m]}}\n"
    )
    with pytest.raises(
        ConfigError, match=r"providers\.local\.base_url: holds a user:password@ part"
    ) as refused:
        load_config(file, env={})
    assert "secret" not in str(refused.value)


def test_userinfo_in_the_sdks_base_url_variable_is_refused() -> None:
    env = {"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "http://user:secret@10.0.0.5/v1"}
    with pytest.raises(ConfigError, match=r"\$OPENAI_BASE_URL"):
        load_config(env=env)
    load_config(env={"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "http://10.0.0.5/v1"})


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), {n: logging.getLogger(n).level for n in logs.QUIET_LOGGERS})
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_http_client_loggers_stay_quiet_at_info() -> None:
    logs.configure("INFO")
    for name in ("httpx", "httpcore"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO)
    assert logging.getLogger("router").isEnabledFor(logging.INFO)
