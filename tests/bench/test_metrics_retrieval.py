"""Retrieval metrics on small hand-made rankings with hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from megastyle.bench.metrics import (
    average_precision,
    evaluate_embeddings,
    full_ranking_average_precision,
    map_at_k,
    mean_average_precision,
    recall_at_k,
    relevance_matrix,
)
from megastyle.data.neighbours import topk_from_similarity, topk_search

# Three queries over a 4-item ranking: a hit first, a no-hit query, hits at ranks 2 and 3.
RELEVANCE = np.array(
    [
        [1, 0, 1, 0],
        [0, 0, 0, 0],
        [0, 1, 1, 0],
    ],
    dtype=bool,
)


def test_recall_at_k_hand_computed() -> None:
    assert recall_at_k(RELEVANCE, 1) == pytest.approx(1 / 3)
    assert recall_at_k(RELEVANCE, 2) == pytest.approx(2 / 3)
    assert recall_at_k(RELEVANCE, 4) == pytest.approx(2 / 3)


def test_map_at_k_is_mean_precision_over_ranks_not_standard_ap() -> None:
    # q0: p@1..4 = 1, 1/2, 2/3, 2/4; q1: all 0; q2: 0, 1/2, 2/3, 2/4.
    assert map_at_k(RELEVANCE, 1) == pytest.approx(1 / 3)
    assert map_at_k(RELEVANCE, 2) == pytest.approx((0.75 + 0 + 0.25) / 3)
    q0 = (1 + 1 / 2 + 2 / 3 + 2 / 4) / 4
    q2 = (0 + 1 / 2 + 2 / 3 + 2 / 4) / 4
    assert map_at_k(RELEVANCE, 4) == pytest.approx((q0 + 0 + q2) / 3)
    # Standard AP over the same full rankings differs: (1 + 2/3)/2 and (1/2 + 2/3)/2.
    ap = average_precision(RELEVANCE)
    np.testing.assert_allclose(ap, [(1 + 2 / 3) / 2, 0.0, (1 / 2 + 2 / 3) / 2])
    assert mean_average_precision(RELEVANCE) == pytest.approx(ap.mean())
    assert mean_average_precision(RELEVANCE) != pytest.approx(map_at_k(RELEVANCE, 4))


def test_map_at_1_equals_recall_at_1_and_k_is_clipped() -> None:
    rng = np.random.default_rng(3)
    rel = rng.random((50, 7)) < 0.3
    assert map_at_k(rel, 1) == pytest.approx(recall_at_k(rel, 1))
    assert recall_at_k(rel, 100) == recall_at_k(rel, 7)
    assert map_at_k(rel, 100) == map_at_k(rel, 7)


def test_no_hit_queries_count_as_zero() -> None:
    rel = np.zeros((4, 5), dtype=bool)
    rel[0, 0] = True
    assert recall_at_k(rel, 5) == pytest.approx(0.25)
    assert map_at_k(rel, 1) == pytest.approx(0.25)
    assert mean_average_precision(rel) == pytest.approx(0.25)


def test_ties_rank_by_gallery_index() -> None:
    sims = np.array([[0.5, 0.9, 0.5, 0.9, 0.1], [0.2, 0.2, 0.2, 0.2, 0.2]], dtype=np.float32)
    top = topk_from_similarity(sims, 3)
    np.testing.assert_array_equal(top.indices, [[1, 3, 0], [0, 1, 2]])
    np.testing.assert_allclose(top.scores[0], [0.9, 0.9, 0.5])
    # Tie spilling over the k-th place: the smallest indices win.
    np.testing.assert_array_equal(topk_from_similarity(sims, 1).indices, [[1], [0]])
    np.testing.assert_array_equal(topk_from_similarity(sims, 2).indices, [[1, 3], [0, 1]])


def test_chunked_search_matches_a_lexsort_reference_with_ties() -> None:
    rng = np.random.default_rng(0)
    # Quantised vectors make many exactly tied scores.
    gallery = rng.integers(-1, 2, size=(37, 4)).astype(np.float32)
    queries = rng.integers(-1, 2, size=(9, 4)).astype(np.float32)
    sims = queries @ gallery.T
    expected = np.stack([np.lexsort((np.arange(37), -row))[:6] for row in sims])
    for query_chunk, gallery_chunk in [(4, 5), (9, 37), (1, 1), (3, 64)]:
        top = topk_search(queries, gallery, 6, query_chunk=query_chunk, gallery_chunk=gallery_chunk)
        np.testing.assert_array_equal(top.indices, expected)
        np.testing.assert_allclose(top.scores, np.take_along_axis(sims, expected, 1))


def test_self_exclusion_and_k_clipping() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 3)).astype(np.float32)
    top = topk_search(x, x, 100, exclude=np.arange(6))
    assert top.indices.shape == (6, 5)  # clipped to the gallery minus the excluded self
    assert all(i not in row for i, row in enumerate(top.indices))
    with pytest.raises(ValueError, match="exclude has 2 entries"):
        topk_search(x, x, 3, exclude=[0, 1])


def test_evaluate_embeddings_hand_computed() -> None:
    gallery = np.array([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6]], dtype=np.float32)
    gallery_labels = ["A", "A", "B"]
    queries = np.array([[1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    query_labels = ["A", "C"]  # the second query's style is absent: a no-hit query
    scores = evaluate_embeddings(queries, gallery, query_labels, gallery_labels, ks=(1, 2, 100))
    # Query A ranks items 0 (1.0), 2 (0.8), 1 (0.0): relevance 1, 0, 1.
    assert scores.effective_k == {1: 1, 2: 2, 100: 3}
    assert scores.recall == {1: 0.5, 2: 0.5, 100: 0.5}
    assert scores.map_at_k[2] == pytest.approx((1 + 0.5) / 2 / 2)
    assert scores.map_at_k[100] == pytest.approx((1 + 1 / 2 + 2 / 3) / 3 / 2)
    assert scores.mean_ap == pytest.approx((1 + 2 / 3) / 2 / 2)
    assert scores.no_hit_queries == 1
    assert scores.as_dict()["recall@1"] == 0.5


def test_full_ranking_ap_excludes_self_and_counts_lone_styles_as_no_hit() -> None:
    x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], dtype=np.float32)
    labels = np.array([0, 0, 1])
    ap = full_ranking_average_precision(x, x, labels, labels, exclude=[0, 1, 2])
    # 0 finds 1 first; 1 finds 0 first; 2 is the only item of its style: no hit left.
    np.testing.assert_allclose(ap, [1.0, 1.0, 0.0])
    scores = evaluate_embeddings(x, x, labels, labels, ks=(1,), exclude=[0, 1, 2])
    assert scores.no_hit_queries == 1
    assert scores.recall[1] == pytest.approx(2 / 3)


def test_relevance_matrix_and_bad_input() -> None:
    rel = relevance_matrix(np.array([[2, 0]]), ["x"], ["x", "y", "x"])
    np.testing.assert_array_equal(rel, [[True, True]])
    with pytest.raises(ValueError, match="NaN"):
        topk_search(np.array([[np.nan, 0.0]]), np.ones((2, 2)), 1)
    with pytest.raises(ValueError, match="k must be >= 1"):
        recall_at_k(RELEVANCE, 0)
