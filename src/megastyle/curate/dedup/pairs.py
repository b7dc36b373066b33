"""What every dedup step returns: the surviving indices and the (removed, kept, score) pairs."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class DuplicatePair:
    """``removed`` was dropped as a duplicate of ``kept`` (indices into the step's input list).

    ``score`` is the step's similarity: 1.0 for exact, Jaccard (exact when verified, else the
    MinHash estimate) for fuzzy, cosine for semantic.
    """

    removed: int
    kept: int
    score: float


@dataclass(eq=False)
class StepResult:
    """One step's outcome over ``n`` inputs: sorted ``kept`` indices and one pair per removed item."""

    n: int
    kept: np.ndarray
    pairs: list[DuplicatePair] = field(default_factory=list)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StepResult):
            return NotImplemented
        return self.n == other.n and np.array_equal(self.kept, other.kept) and self.pairs == other.pairs

    __hash__ = None  # type: ignore[assignment]  # mutable, like any dataclass with eq

    @property
    def removed_count(self) -> int:
        """How many inputs this step removed."""
        return self.n - len(self.kept)

    @property
    def removed(self) -> np.ndarray:
        """Sorted indices of the removed inputs."""
        mask = np.ones(self.n, dtype=bool)
        mask[self.kept] = False
        return np.flatnonzero(mask)


def result_from_pairs(n: int, pairs: list[DuplicatePair]) -> StepResult:
    """A ``StepResult`` whose kept set is everything not named as removed in ``pairs``."""
    mask = np.ones(n, dtype=bool)
    removed = np.fromiter((p.removed for p in pairs), dtype=np.int64, count=len(pairs))
    mask[removed] = False
    pairs = sorted(pairs, key=lambda p: p.removed)
    return StepResult(n=n, kept=np.flatnonzero(mask), pairs=pairs)
