"""Retrieval metrics at their edges: empty inputs, blocks, exclusions, ties, the flat dict, the errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from megastyle.bench.metrics import (
    average_precision,
    evaluate_embeddings,
    full_ranking_average_precision,
    map_at_k,
    mean_average_precision,
    query_map_at_k,
    recall_at_k,
    relevance_matrix,
)


def unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_no_queries_score_zero_not_nan() -> None:
    empty = np.zeros((0, 5), dtype=bool)
    assert recall_at_k(empty, 1) == 0.0 and map_at_k(empty, 3) == 0.0
    assert mean_average_precision(empty) == 0.0


def test_a_ranking_with_no_ranks_scores_zero_per_query() -> None:
    values = query_map_at_k(np.zeros((3, 0), dtype=bool), 5)
    assert values.shape == (3,) and not values.any()


def test_relevance_takes_integer_valued_arrays_of_any_dtype() -> None:
    indices = np.array([[1.0, 0.0], [0.0, 2.0]])  # e.g. read back from a float table
    got = relevance_matrix(indices, ["a", "b"], ["b", "a", "b"])
    assert got.tolist() == [[True, False], [True, True]]


def test_the_errors_name_what_is_wrong() -> None:
    with pytest.raises(ValueError, match=r"^3 query labels for 2 rankings$"):
        relevance_matrix(np.zeros((2, 4), dtype=int), ["a", "b", "c"], ["a"])
    with pytest.raises(ValueError, match=r"^relevance must be 2-D \(queries × ranks\), got shape \(3,\)$"):
        recall_at_k(np.zeros(3, dtype=bool), 1)
    with pytest.raises(ValueError, match=r"^relevance must be 2-D \(queries × ranks\), got shape \(3,\)$"):
        average_precision(np.zeros(3, dtype=bool))
    q, g = unit_rows(3, 4, 0), unit_rows(5, 4, 1)
    with pytest.raises(
        ValueError, match=r"^labels \(3 queries, 4 gallery\) do not match embeddings \(3, 5\)$"
    ):
        evaluate_embeddings(q, g, [0, 1, 2], [0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"^ks must name at least one k$"):
        evaluate_embeddings(q, g, [0, 1, 2], [0, 1, 2, 3, 4], ks=())
    with pytest.raises(ValueError, match=r"^queries must be 2-D"):
        full_ranking_average_precision(q[0], g, [0], [0] * 5)
    with pytest.raises(ValueError, match=r"^gallery must be 2-D"):
        full_ranking_average_precision(q, g[0], [0] * 3, [0])


def test_full_ranking_ap_is_the_same_in_any_block_size() -> None:
    q, g = unit_rows(7, 3, 2), unit_rows(9, 3, 3)  # more queries than dimensions
    q_labels, g_labels = np.arange(7) % 3, np.arange(9) % 3
    whole = full_ranking_average_precision(q, g, q_labels, g_labels)
    for max_block in (9, 18, 27):  # 1, 2 and 3 queries per block
        blocks = full_ranking_average_precision(q, g, q_labels, g_labels, max_block=max_block)
        np.testing.assert_allclose(blocks, whole)
    sims = q @ g.T
    order = np.argsort(-sims, axis=1, kind="stable")
    np.testing.assert_allclose(whole, average_precision(g_labels[order] == q_labels[:, None]))


def test_equal_scores_rank_by_gallery_index() -> None:
    # 600 identical gallery items: only a stable sort puts the relevant first one (index 0) at rank 1.
    g = np.tile(unit_rows(1, 4, 4), (600, 1))
    g_labels = np.array([1] + [0] * 599)
    ap = full_ranking_average_precision(g[:1], g, [1], g_labels)
    assert ap.tolist() == [1.0]
    ap = full_ranking_average_precision(g[:1], g, [0], g_labels)
    expected = np.mean([(j + 1) / (j + 2) for j in range(599)])
    assert ap[0] == pytest.approx(expected)


def test_exclusions_count_the_gallery_one_smaller_and_never_rank_the_excluded_item() -> None:
    # Query 0 is gallery item 0 and its only same-style item: with it excluded the query has no hit.
    g = unit_rows(4, 5, 5)
    labels = np.array([7, 8, 8, 9])
    scores = evaluate_embeddings(g, g, labels, labels, ks=(1, 4), exclude=[0, 1, 2, 3])
    assert scores.effective_k == {1: 1, 4: 3}
    assert scores.no_hit_queries == 2  # styles 7 and 9 have nothing left to find
    assert scores.per_query_ap is not None and scores.per_query_ap.tolist()[0] == 0.0
    assert scores.per_query_ap.tolist()[3] == 0.0
    assert scores.per_query_ap[1] > 0 and scores.per_query_ap[2] > 0
    unexcluded = evaluate_embeddings(g, g, labels, labels, ks=(1, 4))
    assert unexcluded.no_hit_queries == 0 and unexcluded.per_query_ap is not None
    assert unexcluded.per_query_ap[0] == 1.0 and unexcluded.per_query_ap[3] == 1.0  # itself, first
    assert scores.mean_ap == pytest.approx(float(np.mean(scores.per_query_ap)))


def test_an_excluded_self_at_gallery_index_0_is_not_a_relevant_item() -> None:
    g = unit_rows(3, 4, 6)
    labels = np.array([5, 6, 5])
    scores = evaluate_embeddings(g[:1], g, labels[:1], labels, ks=(2,), exclude=[0])
    assert scores.no_hit_queries == 0  # gallery item 2 is still of style 5
    scores = evaluate_embeddings(g[1:2], g, labels[1:2], labels, ks=(2,), exclude=[1])
    assert scores.no_hit_queries == 1  # item 1 was style 6's only one


def test_scores_carry_their_counts_and_the_flat_dict_lists_everything() -> None:
    q, g = unit_rows(4, 6, 7), unit_rows(10, 6, 8)
    q_labels, g_labels = np.array([0, 1, 2, 3]), np.arange(10) % 3
    scores = evaluate_embeddings(q, g, q_labels, g_labels, ks=(1, 5))
    assert (scores.num_queries, scores.gallery_size, scores.no_hit_queries) == (4, 10, 1)
    assert scores.per_query_ap is not None and scores.per_query_ap.shape == (4,)
    assert set(scores.per_query) == {"recall@1", "recall@5", "map@1", "map@5", "mAP"}
    flat = scores.as_dict()
    assert list(flat) == [
        "recall@1",
        "recall@5",
        "map@1",
        "map@5",
        "mAP",
        "queries",
        "gallery",
        "no_hit_queries",
    ]
    assert (flat["queries"], flat["gallery"], flat["no_hit_queries"]) == (4, 10, 1)
    assert flat["recall@5"] == scores.recall[5] and flat["mAP"] == scores.mean_ap
    assert evaluate_embeddings(q, g, q_labels, g_labels, standard_map=False).mean_ap is None


def test_tensor_inputs_give_the_numpy_results() -> None:
    q, g = unit_rows(3, 4, 9), unit_rows(6, 4, 10)
    labels_q, labels_g = [0, 1, 0], [0, 1, 1, 0, 2, 2]
    a = evaluate_embeddings(q, g, labels_q, labels_g, ks=(1, 3)).as_dict()
    b = evaluate_embeddings(torch.from_numpy(q), torch.from_numpy(g), labels_q, labels_g, ks=(1, 3)).as_dict()
    assert a == b


def test_evaluating_no_queries_gives_zeros_and_no_map() -> None:
    g = unit_rows(3, 3, 11)
    scores = evaluate_embeddings(np.zeros((0, 3), np.float32), g, [], [0, 1, 2], ks=(1, 2))
    assert scores.recall == {1: 0.0, 2: 0.0} and scores.map_at_k == {1: 0.0, 2: 0.0}
    assert scores.mean_ap is None and scores.num_queries == 0
