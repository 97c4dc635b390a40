"""Listen addresses versus the addresses peers dial."""

from __future__ import annotations

import pytest

from core.addresses import bind_host_port, dial_address


@pytest.mark.parametrize(
    ("listen", "dial"),
    [
        ("0.0.0.0:0", "127.0.0.1:7"),
        ("[::]:0", "127.0.0.1:7"),
        (":0", "127.0.0.1:7"),
        ("localhost:0", "localhost:7"),
        ("[::1]:0", "[::1]:7"),
    ],
)
def test_a_wildcard_listen_is_dialled_on_localhost(listen: str, dial: str) -> None:
    assert dial_address(listen, 7) == dial


def test_a_remote_peer_dials_the_machine_name() -> None:
    assert dial_address("0.0.0.0:50061", 50061, wildcard_host="gpu-3") == "gpu-3:50061"
    assert dial_address("10.0.0.5:0", 50061, wildcard_host="gpu-3") == "10.0.0.5:50061"


@pytest.mark.parametrize(
    ("listen", "bind"),
    [("127.0.0.1:9090", ("127.0.0.1", 9090)), (":9090", ("0.0.0.0", 9090)), ("[::1]:0", ("::1", 0))],
)
def test_bind_host_port(listen: str, bind: tuple[str, int]) -> None:
    assert bind_host_port(listen) == bind
