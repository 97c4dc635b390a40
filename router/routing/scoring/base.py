"""The candidate being scored and the scorer interface."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from router.backends.base import Backend
from router.routing.stats import BackendStats


class Candidate:
    """One place a request could run: a backend and the model it would run there.

    A dozen or so are made per request, so construction sets only what every candidate needs; `components`
    (each scorer's value behind `score`, read by status and usage explanations) is built from the ranking's
    columns only when something reads it.
    """

    __slots__ = (
        "_built",
        "backend",
        "estimated_cost_usd",
        "model",
        "prefix_keys",
        "prefix_match",
        "priority",
        "score",
        "score_terms",
        "score_values",
        "stats",
        "utilisation",
    )

    def __init__(
        self,
        backend: Backend,
        model: str,
        stats: BackendStats,
        estimated_cost_usd: float,
        priority: int,  # lower is preferred: the route position, else the backend's configured priority
    ) -> None:
        self.backend = backend
        self.model = model
        self.stats = stats
        self.estimated_cost_usd = estimated_cost_usd
        self.priority = priority
        self.prefix_match = 0.0  # share of the request's prefix keys the backend probably holds, 0 to 1
        self.prefix_keys: tuple[int, ...] = ()  # the request's prefix keys, where the backend keeps a cache
        self.score = 0.0
        # What `rank` made the score of: the scorers' names in the strategy's order and their values here.
        self.score_terms: tuple[str, ...] = ()
        self.score_values: tuple[float, ...] = ()
        # The backend's utilisation when the candidate was made: read by several scorers, computed once.
        self.utilisation = backend.utilisation()
        self._built: tuple[tuple[float, ...], dict[str, float]] | None = None

    @property
    def components(self) -> dict[str, float]:
        """Each scorer's value behind `score`, by scorer name: built on first read from `score_values`
        and kept until the candidate is scored again (a plain dict: callers may add to it)."""
        built = self._built
        if built is None or built[0] is not self.score_values:
            built = self._built = (
                self.score_values,
                dict(zip(self.score_terms, self.score_values, strict=True)),
            )
        return built[1]

    def __repr__(self) -> str:
        return f"Candidate({self.backend.id!r}, {self.model!r}, score={self.score:.3f})"


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
