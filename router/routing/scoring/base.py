"""The candidate being scored and the scorer interface."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field

from router.backends.base import Backend
from router.routing.stats import BackendStats


@dataclass(slots=True)  # a dozen made per request: slots make them cheaper to build and read
class Candidate:
    """One place a request could run: a backend and the model it would run there."""

    backend: Backend
    model: str
    stats: BackendStats
    estimated_cost_usd: float
    priority: int  # lower is preferred: the route position, else the backend's configured priority
    prefix_match: float = 0.0  # share of the request's prefix keys the backend probably holds, 0 to 1
    prefix_keys: tuple[int, ...] = ()  # the request's prefix keys, where the backend keeps a prefix cache
    score: float = 0.0
    components: dict[str, float] = field(default_factory=dict)
    # The backend's utilisation when the candidate was made: read by several scorers, computed once.
    utilisation: float = field(init=False)

    def __post_init__(self) -> None:
        self.utilisation = self.backend.utilisation()


class Scorer(abc.ABC):
    """Rates all candidates together, since several scores are relative (cheapest, fastest)."""

    name: str

    @abc.abstractmethod
    def score(self, candidates: Sequence[Candidate]) -> list[float]: ...


def spread_score(values: Sequence[float], lower_is_better: bool = True) -> list[float]:
    """Map values linearly onto [0, 1] across the candidates: the best gets 1, the worst 0."""
    low, high = min(values), max(values)
    if high == low:
        return [1.0] * len(values)
    scaled = [(v - low) / (high - low) for v in values]
    return [1.0 - s for s in scaled] if lower_is_better else scaled
