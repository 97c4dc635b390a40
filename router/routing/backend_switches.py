"""Per-backend switches an operator changes at run time (Admin service): enabled and priority.

Kept by backend id apart from the backend objects, so a worker that reconnects keeps what an operator set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from router.backends.base import DEFAULT_PRIORITY, Backend


@dataclass
class BackendSettings:
    enabled: bool = True
    priority: int = DEFAULT_PRIORITY


class SettingsBook:
    def __init__(self) -> None:
        self._settings: dict[str, BackendSettings] = {}
        # A seen backend's switches by id, None for one never seen (then index the book with it): the
        # dict's own get, as the scheduler reads it for every candidate of every request.
        self.find: Callable[[str], BackendSettings | None] = self._settings.get

    def __getitem__(self, backend: Backend) -> BackendSettings:
        settings = self._settings.get(backend.id)
        if settings is None:
            # First sight: start from what the backend was configured with.
            settings = BackendSettings(enabled=backend.enabled, priority=backend.priority)
            self._settings[backend.id] = settings
        return settings

    def forget_defaults(self, backend_id: str) -> None:
        """Drop a departed backend's entry if nobody changed it; an operator's switch outlives a reconnect."""
        if self._settings.get(backend_id) == BackendSettings():
            del self._settings[backend_id]

    def __contains__(self, backend_id: object) -> bool:
        return backend_id in self._settings
