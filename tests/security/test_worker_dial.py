"""The router's view of its worker certificate files: renewed files are noticed within a second, without a
stat of every file on every request; and its channels to workers send no BDP pings."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.tls import ChannelTls
from router.config.settings import RouterConfig
from router.security.worker_dial import WorkerDialer


def test_renewed_files_are_noticed_after_the_recheck_interval_not_on_every_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    ca = tmp_path / "ca.pem"
    ca.write_text("the first CA")
    dialer = WorkerDialer(tls=ChannelTls(ca=str(ca)))
    first = dialer.stamp()
    ca.write_text("a renewed CA, of another size")
    now[0] += 0.5
    assert dialer.stamp() == first  # within the interval: the files are not looked at again
    now[0] += 0.6
    assert dialer.stamp() != first  # past it: the renewed file is seen, and a new channel will be made


def test_plaintext_has_no_stamp() -> None:
    assert WorkerDialer().stamp() is None


def test_channels_to_workers_have_the_routers_fixed_window_and_no_bdp_pings() -> None:
    dialer = WorkerDialer.from_config(RouterConfig(grpc_stream_window_bytes=1 << 20))
    assert ("grpc.http2.bdp_probe", 0) in dialer.options
    assert ("grpc.http2.lookahead_bytes", 1 << 20) in dialer.options
    assert WorkerDialer.from_config(RouterConfig(grpc_stream_window_bytes=0)).options == ()  # gRPC's own
