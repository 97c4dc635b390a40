"""`python -m gpu_worker`: run one worker until SIGTERM."""

from __future__ import annotations

import sys

from gpu_worker.main import main

# The guard matters: vLLM starts its engine core with multiprocessing "spawn", which re-imports this module.
if __name__ == "__main__":
    sys.exit(main())
