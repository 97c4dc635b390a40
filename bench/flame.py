"""Flame graphs of the router process under load: `python -m bench.flame [--seconds S]`.

py-spy samples the router from outside (no slow-down inside it, unlike cProfile) while the load generator
runs one load at a time: the worker backend at concurrency 64 with 1-chunk answers, the worker backend at
concurrency 32 with 64-chunk streams, and the openai_compatible backend at concurrency 32 with 64-chunk
streams. Writes bench/results/profile_<load>.svg. Shares of time are what to read, never rates.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from bench.load import ChatLoad, load_child
from bench.processes import spawn
from bench.stack import HTTP_MODEL, spawn_stack

RESULTS = Path(__file__).parent / "results"
LOADS = (  # file suffix, model, concurrency, chunks per answer
    ("worker_c64_unary", "bench", 64, 1),
    ("worker_c32_stream", "bench", 32, 64),
    ("openai_c32_stream", HTTP_MODEL, 32, 64),
)


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: pip install py-spy (the dev extra has it)")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flame", description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--only", default="", help="comma-separated load names; all by default")
    args = parser.parse_args(argv)
    py_spy = _py_spy()
    load = spawn("load-generator", load_child)
    stack = spawn_stack("flame")
    address, router = stack.address, stack.router
    wanted = {name for name in args.only.split(",") if name}
    try:
        for name, model, concurrency, tokens in LOADS:
            if wanted and name not in wanted:
                continue
            out = RESULTS / f"profile_{name}.svg"
            job = ChatLoad(address, "router", concurrency, 10_000_000, args.seconds + 2, tokens, 0, model)
            thread = threading.Thread(target=load.request, args=(job, args.seconds + 120))
            thread.start()
            cmd = [py_spy, "record", "--format", "flamegraph", "--rate", "200", "--nonblocking"]
            cmd += ["--duration", str(int(args.seconds)), "--pid", str(router.pid), "-o", str(out)]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            thread.join()
            print(f"bench.flame: wrote {out}", flush=True)
    finally:
        stack.stop()
        load.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
