"""The local model cache: models the worker makes itself (converted or generated), written once, atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

CACHE_ENV = "MODELYARD_MODEL_CACHE"


def model_cache_root() -> Path:
    """$MODELYARD_MODEL_CACHE, else ~/.cache/modelyard/models (read on each call, so tests can point it away)."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "modelyard" / "models"


def is_complete(directory: Path, required_files: Iterable[str]) -> bool:
    return all((directory / name).is_file() for name in required_files)


def ensure_model_directory(
    target: Path, required_files: Iterable[str], write: Callable[[Path], None]
) -> tuple[Path, bool]:
    """Return (`target`, whether it was written now), calling `write(staging)` first if it is missing.

    `write` fills a temporary sibling which is then renamed into place, so concurrent callers never see a
    half-written model: the first rename wins and the others discard their copies.
    """
    required = tuple(required_files)
    target = target.expanduser()
    if is_complete(target, required):
        return target, False
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        write(staging)
        if target.exists() and not is_complete(target, required):
            # Left behind by a process killed before models were written atomically; safe to replace.
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(staging, target)
        except OSError:
            if not is_complete(target, required):
                raise
            # Another process finished first; its copy is as good as ours.
            return target, False
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, True
