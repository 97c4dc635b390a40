"""Where the HTTP door's settings come from: the flag, the file, the environment; and their limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.config.loader import ConfigError, load_config
from router.main import build_parser, config_from_args
from router.server import RouterServer
from tests.http.conftest import door_config


def test_flag_file_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text("http_listen: 127.0.0.1:8080\nhttp_max_body_bytes: 1024\n")
    config = load_config(path, env={})
    assert (config.http_listen, config.http_max_body_bytes) == ("127.0.0.1:8080", 1024)
    assert load_config(path, env={"MODELYARD_HTTP_LISTEN": "127.0.0.1:9000"}).http_listen == "127.0.0.1:9000"
    args = build_parser().parse_args(["--config", str(path), "--http-listen", "127.0.0.1:7000"])
    assert config_from_args(args).http_listen == "127.0.0.1:7000"
    assert load_config(None, env={}).http_listen == ""  # off by default


def test_limits_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text("http_max_body_bytes: 0\n")
    with pytest.raises(ConfigError, match="http_max_body_bytes"):
        load_config(path, env={})
    with pytest.raises(ValueError, match="http_max_body_bytes"):
        RouterServer(door_config(http_max_body_bytes=0))


def test_no_door_unless_asked() -> None:
    assert RouterServer(door_config(http_listen="")).http is None
