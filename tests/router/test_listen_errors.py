"""A port that cannot be bound: one line naming the flag (and config key) and the address, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.listen_errors import ListenError
from router import up as _up
from router.config.settings import RouterConfig
from router.server import RouterServer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def busy() -> Iterator[str]:
    """An address some other program listens on."""
    with socket.create_server(("127.0.0.1", 0)) as held:
        yield f"127.0.0.1:{held.getsockname()[1]}"


def config(**settings: str) -> RouterConfig:
    return RouterConfig(**{"listen": "127.0.0.1:0", "usage_db": "off", **settings})  # type: ignore[arg-type]


async def test_a_busy_listen_is_a_listen_error_naming_the_setting(busy: str) -> None:
    with pytest.raises(ListenError) as raised:
        await RouterServer(config(listen=busy)).start()
    assert str(raised.value) == f"cannot listen on {busy} (--listen, config listen): Address already in use"


@pytest.mark.parametrize("setting", ["http_listen", "metrics_listen"])
async def test_a_busy_http_or_metrics_port_stops_the_router_before_it_serves(busy: str, setting: str) -> None:
    server = RouterServer(config(**{setting: busy}))
    with pytest.raises(ListenError, match=f"--{setting.replace('_', '-')}, config {setting}"):
        await server.start()


async def test_a_second_router_on_the_same_port_is_refused() -> None:
    """gRPC's SO_REUSEPORT would let two routers share a port (make run twice): the second must not start."""
    first = RouterServer(config())
    await first.start()
    try:
        with pytest.raises(ListenError, match="Address already in use"):
            await RouterServer(config(listen=first.address)).start()
    finally:
        await first.stop(0)


def run_cli(*args: str) -> tuple[int, list[str]]:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "modelyard_client", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            **os.environ,
            "MODELYARD_USAGE_DB": "off",
            "PYTHONPATH": os.pathsep.join(str(REPO / d) for d in ("", "proto", "clients")),
        },
    )
    return done.returncode, done.stderr.splitlines()


@pytest.mark.parametrize("flag", ["--listen", "--http-listen"])
def test_the_router_command_says_one_line(busy: str, flag: str) -> None:
    extra = [] if flag == "--listen" else ["--listen", "127.0.0.1:0"]
    status, lines = run_cli("router", *extra, flag, busy)
    assert status == 1
    assert lines[-1] == (
        f"modelyard router: cannot listen on {busy} ({flag}, config {flag[2:].replace('-', '_')}): "
        "Address already in use"
    )
    assert not any("Traceback" in line for line in lines)


@pytest.mark.parametrize("flag", ["listen", "http_listen"])
async def test_up_says_one_line(busy: str, flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = _up.build_parser().parse_args(["--listen", "127.0.0.1:0"])
    setattr(args, flag, busy)
    assert await asyncio.wait_for(_up.serve(args, asyncio.Event()), 60) == 1
    err = capsys.readouterr().err.splitlines()
    assert f"error: cannot listen on {busy} (--{flag.replace('_', '-')}, config {flag})" in err[-1]


def test_up_builds_its_args_from_the_parser() -> None:
    assert isinstance(_up.build_parser().parse_args([]), argparse.Namespace)
