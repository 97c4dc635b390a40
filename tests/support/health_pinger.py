"""Health checks from another process, as a load balancer would send them: `python -m tests.support.health_pinger
ADDRESS`. Checks every 50 ms, one at a time, each with a generous deadline (a check that fails means the router
did not answer at all, not that a loaded machine was slow); prints "ready" after the first answer, and when its
stdin closes, "ok N failed M" and exits."""

from __future__ import annotations

import sys
import threading
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

DEADLINE_S = 30.0


def main(address: str) -> None:
    done = threading.Event()

    def wait_for_stdin_to_close() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=wait_for_stdin_to_close, daemon=True).start()
    ok = failed = 0
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while not done.is_set():
            try:
                stub.Check(health_pb2.HealthCheckRequest(), timeout=DEADLINE_S)
                ok += 1
                if ok == 1:
                    print("ready", flush=True)
            except grpc.RpcError as e:
                failed += 1
                print(f"failed: {e.code()}", file=sys.stderr, flush=True)
            time.sleep(0.05)
    print(f"ok {ok} failed {failed}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
