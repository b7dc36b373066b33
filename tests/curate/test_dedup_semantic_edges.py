"""SemDeDup's edges: input precision, the cosine bar at equality, blocks past the second, the random keep
order, cluster counts at their bounds, and the shape error's text."""

from __future__ import annotations

import numpy as np
import pytest

from megastyle.curate.dedup import semantic
from megastyle.curate.dedup.semantic import auto_cluster_count, normalize_rows, semantic_duplicates


def test_rows_are_rounded_to_float32_before_they_are_normalised() -> None:
    x = np.random.default_rng(0).normal(size=(500, 16))
    # The same embeddings given in float64 or float32 give the same rows, to the bit.
    assert np.array_equal(normalize_rows(x), normalize_rows(x.astype(np.float32)))
    assert normalize_rows(x).dtype == np.float32
    with pytest.raises(ValueError, match=r"^embeddings must be a 2-D \(n, d\) array, got shape \(3,\)$"):
        normalize_rows(np.ones(3))


def test_a_cosine_exactly_at_the_bar_is_a_duplicate() -> None:
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    result = semantic_duplicates(x, eps=0.0, n_clusters=1, keep="first")  # bar 1.0, cosine exactly 1.0
    assert [(p.removed, p.kept, p.score) for p in result.pairs] == [(1, 0, 1.0)]


def test_every_block_is_searched_past_the_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(semantic, "_BLOCK_ROWS", 4)
    x = np.eye(30)[np.r_[np.arange(15), np.arange(15)]]  # rows 15–29 repeat rows 0–14
    result = semantic_duplicates(x, eps=0.01, n_clusters=1, keep="first")
    assert {p.removed: p.kept for p in result.pairs} == {15 + i: i for i in range(15)}


def test_random_keep_follows_the_seeded_permutation() -> None:
    x = np.ones((6, 3))  # six copies: the first of the permutation is kept
    for seed in (0, 1, 2):
        result = semantic_duplicates(x, n_clusters=1, keep="random", seed=seed)
        first = int(np.random.default_rng(seed).permutation(np.arange(6))[0])
        assert result.kept.tolist() == [first]
    assert any(int(np.random.default_rng(s).permutation(np.arange(6))[0]) != 0 for s in (0, 1, 2))


@pytest.mark.parametrize(
    ("n", "size", "expected"), [(5, 1000, 1), (0, 10, 1), (5, 1, 5), (5, 0, 5), (21, 10, 3)]
)
def test_cluster_count_at_its_bounds(n: int, size: int, expected: int) -> None:
    assert auto_cluster_count(n, size) == expected
