"""The router's view of its worker certificate files: renewed files are noticed within a second, without a
stat of every file on every request."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.tls import ChannelTls
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
