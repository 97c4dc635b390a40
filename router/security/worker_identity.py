"""Who may hold a place in the worker pool under which id, checked before a worker joins.

Worker ids and model names end up in routing tables, Prometheus labels and log lines, so they are held to a
plain charset and length. Worker ids live beside configured providers but can never take one's id, and a
live worker's id cannot be taken over from another machine.
"""

from __future__ import annotations

import re

from modelyard.worker.v1 import worker_pb2

from core.errors import AlreadyExists, CapacityExhausted, InvalidArgument, PermissionDenied
from router.backends.worker import WorkerBackend
from router.config.security import WorkersConfig
from router.routing.backend_registry import BackendRegistry

MAX_ID_CHARS = 128
WORKER_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_ID_CHARS - 1}}}")
MODEL_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._:/@+-]{{0,{MAX_ID_CHARS - 1}}}")
MAX_MODELS = 64


def validate_names(hello: worker_pb2.WorkerHello) -> None:
    if not WORKER_ID.fullmatch(hello.worker_id):
        raise InvalidArgument(
            f"hello.worker_id: {hello.worker_id[:MAX_ID_CHARS]!r} must be 1-{MAX_ID_CHARS} characters "
            "of letters, digits, '.', '_' and '-', starting with a letter or digit"
        )
    if len(hello.models) > MAX_MODELS:
        raise InvalidArgument(f"hello.models: at most {MAX_MODELS} models per worker")
    for i, model in enumerate(hello.models):
        if not MODEL_ID.fullmatch(model.id):
            raise InvalidArgument(
                f"hello.models[{i}].id: {model.id[:MAX_ID_CHARS]!r} must be 1-{MAX_ID_CHARS} characters "
                "of letters, digits and . _ : / @ + -, starting with a letter or digit"
            )


def peer_host(peer: str) -> str:
    """ "ipv4:10.0.0.5:41234" -> "ipv4:10.0.0.5": the machine a connection comes from."""
    return peer.rsplit(":", 1)[0] if peer.count(":") >= 2 else peer


class WorkerAdmission:
    """Decides whether a validated hello may join; raises the status that says why not."""

    def __init__(self, registry: BackendRegistry, config: WorkersConfig) -> None:
        self._registry = registry
        self._config = config

    def check(self, hello: worker_pb2.WorkerHello, peer: str) -> WorkerBackend | None:
        """The live worker this hello replaces (the same worker reconnecting), else None."""
        existing = self._registry.get(hello.worker_id)
        if existing is not None and not isinstance(existing, WorkerBackend):
            raise AlreadyExists(
                f"hello.worker_id: {hello.worker_id!r} is a configured provider's id; pick another worker id"
            )
        if existing is not None and (
            existing.peer_host != peer_host(peer) or existing.worker_address != hello.address
        ):
            raise AlreadyExists(
                f"hello.worker_id: a worker {hello.worker_id!r} is already registered from another machine"
            )
        allowed = self._config.allowed_models
        for i, model in enumerate(hello.models):
            if allowed and model.id not in allowed:
                raise PermissionDenied(f"hello.models[{i}].id: {model.id!r} is not in workers.allowed_models")
        if existing is None and self._registry.workers >= self._config.max_workers:
            raise CapacityExhausted(f"the pool is full: workers.max_workers is {self._config.max_workers}")
        return existing
