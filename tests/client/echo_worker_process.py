"""`python -m tests.client.echo_worker_process --router ADDR [--worker-id ID] [--delay-s S]`: the echo worker
double as a process of its own, until SIGTERM. Stands in for `python -m gpu_worker` in tests (the child
`modelyard up` starts), and for a worker that is killed or frozen (tests.router.test_migration, bench.faults).
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from tests.support.echo_worker import EchoWorker, Faults


async def run(router: str, worker_id: str, delay_s: float, max_concurrency: int) -> None:
    worker = EchoWorker(
        worker_id, models=("echo",), max_concurrency=max_concurrency, faults=Faults(delay_s=delay_s)
    )
    await worker.start()
    await worker.register(router)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--router", required=True)
    parser.add_argument("--listen")
    parser.add_argument("--worker-id", default="echo-worker")
    parser.add_argument("--delay-s", type=float, default=0.0, help="before each delta")
    parser.add_argument("--max-concurrency", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(run(args.router, args.worker_id, args.delay_s, args.max_concurrency))


if __name__ == "__main__":
    main()
