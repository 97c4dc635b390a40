"""What a worker says on a Register stream each report interval: its load when it changed, else now and then a
heartbeat.

A router reads running, waiting, draining, KV-cache use, queued audio and aborted requests to route: a change
in any of them is sent at the next report interval (or at once, when forced). GPU figures and the token rate
are only shown (status, metrics), so they ride along at the heartbeat interval at most. A worker whose load
stays as it was sends a Heartbeat message every heartbeat interval: a thousand idle workers then cost a router
a few hundred empty messages a second instead of a thousand load reports. A router that acknowledges with no
heartbeat interval (one that predates heartbeats) gets a full report every interval, as before.
"""

from __future__ import annotations

from modelyard.v1 import backend_pb2
from modelyard.worker.v1 import worker_pb2

_HEARTBEAT = worker_pb2.RegisterRequest(heartbeat=worker_pb2.Heartbeat())

RoutedLoad = tuple[int, int, bool, float, float, int]


def routed(load: backend_pb2.LoadReport) -> RoutedLoad:
    """The part of a load report a router routes by."""
    return (
        load.running,
        load.waiting,
        load.draining,
        load.kv_cache_usage,
        load.queued_audio_seconds,
        load.aborted_total,
    )


class ReportPolicy:
    """Decides, once per report interval of one stream, what to send; `interval_s` is the stream's tick."""

    def __init__(self, interval_s: float, heartbeat_s: float) -> None:
        self.interval_s = interval_s
        self.heartbeat_s = heartbeat_s  # 0: the router wants a full report every interval
        self._sent: backend_pb2.LoadReport | None = None
        self._sent_routed: RoutedLoad | None = None
        self._sent_at = 0.0

    def next(
        self, load: backend_pb2.LoadReport, now: float, force: bool = False
    ) -> worker_pb2.RegisterRequest | None:
        """The message to send now, or None. `force`: a full report whatever changed (the first after the
        router's acknowledgement, a drain starting)."""
        view = routed(load)
        # Ticks land about an interval apart: due within half a tick, so a heartbeat is never a tick late.
        due = now - self._sent_at >= self.heartbeat_s - self.interval_s / 2
        if force or view != self._sent_routed or not self.heartbeat_s or (due and load != self._sent):
            self._sent, self._sent_routed, self._sent_at = load, view, now
            return worker_pb2.RegisterRequest(load=load)
        if due:
            self._sent_at = now
            return _HEARTBEAT
        return None
