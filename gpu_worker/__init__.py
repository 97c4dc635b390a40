"""The Modelyard GPU worker: serves vLLM and faster-whisper engines and registers itself with routers."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("modelyard")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
