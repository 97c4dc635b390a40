"""`python -m tests.client.echo_worker_process --router ADDR --listen ADDR`: the echo worker double as
the child process `modelyard up` starts, until SIGTERM. Stands in for `python -m gpu_worker` in tests."""

from __future__ import annotations

import argparse
import asyncio
import signal

from tests.support.echo_worker import EchoWorker


async def run(router: str) -> None:
    worker = EchoWorker("echo-worker", models=("echo",))
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
    asyncio.run(run(parser.parse_args().router))


if __name__ == "__main__":
    main()
