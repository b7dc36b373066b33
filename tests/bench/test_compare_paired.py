"""Paired differences between encoders: per-query values, the style-cluster bootstrap, the report."""

from __future__ import annotations

import numpy as np
import pytest

from megastyle.bench.compare import compare_encoders, paired_difference
from megastyle.bench.metrics import evaluate_embeddings
from megastyle.bench.retrieval import BenchmarkItem, EncoderRun, RetrievalResult


def _item(label: int, role: str, row: int) -> BenchmarkItem:
    return BenchmarkItem(role, row, "s.parquet", row, f"id{row}", f"style {label}", label, None, label)


def _result(hits: dict[str, list[float]], labels: list[int]) -> RetrievalResult:
    """A result whose encoders have the given per-query Recall@1 (= mAP@1) values."""
    runs = {}
    for name, values in hits.items():
        scores = evaluate_embeddings(np.eye(2), np.eye(2), [0, 1], [0, 1], ks=(1,))
        scores.per_query = {"map@1": np.asarray(values, dtype=float)}
        runs[name] = EncoderRun(name, scores, None, 2, 0.0)  # type: ignore[arg-type]
    queries = [_item(label, "query", i) for i, label in enumerate(labels)]
    return RetrievalResult({}, [1], queries, [], runs)


def test_per_query_values_average_to_the_reported_metrics() -> None:
    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(30, 8)), rng.normal(size=(60, 8))
    q_labels = rng.integers(0, 7, 30)  # styles 5 and 6 have no gallery image: no-hit queries
    scores = evaluate_embeddings(q, g, q_labels, rng.integers(0, 5, 60), ks=(1, 10, 100))
    flat = scores.as_dict()
    assert set(scores.per_query) == {
        "recall@1",
        "recall@10",
        "recall@100",
        "map@1",
        "map@10",
        "map@100",
        "mAP",
    }
    for name, values in scores.per_query.items():
        assert values.shape == (30,)
        assert values.mean() == pytest.approx(flat[name]), name
    assert np.array_equal(scores.per_query["map@1"], scores.per_query["recall@1"])
    no_hit = q_labels >= 5
    assert no_hit.any() and all(not values[no_hit].any() for values in scores.per_query.values())


def test_identical_encoders_differ_by_exactly_zero() -> None:
    result = _result({"a": [1, 0, 1, 1], "b": [1, 0, 1, 1]}, [0, 0, 1, 1])
    d = paired_difference(result, "a", "b", "map@1")
    assert d.difference == 0 and d.ci95 == (0.0, 0.0) and d.better == d.worse == 0


def test_the_interval_resamples_styles_not_queries() -> None:
    # Four styles of two queries; b misses both queries of style 3 only.
    labels = [0, 0, 1, 1, 2, 2, 3, 3]
    result = _result({"a": [1.0] * 8, "b": [1, 1, 1, 1, 1, 1, 0, 0]}, labels)
    d = paired_difference(result, "a", "b", "map@1", reps=4000, seed=1)
    assert d.difference == pytest.approx(0.25)
    assert (d.better, d.worse, d.queries, d.styles) == (2, 0, 8, 4)
    # Style 3 is left out of a resample with probability (3/4)^4 = 0.32 > 2.5%: the low end is 0.
    # Each resample's mean is a multiple of 1/4 (whole styles), so the high end is one.
    assert d.ci95[0] == 0.0 and d.ci95[1] in (0.5, 0.75)
    # Seeded.
    assert paired_difference(result, "a", "b", "map@1", reps=4000, seed=1) == d
    # Reversed order flips the sign and the interval.
    r = paired_difference(result, "b", "a", "map@1", reps=4000, seed=1)
    assert r.difference == -d.difference and r.ci95 == (-d.ci95[1], -d.ci95[0])


def test_a_consistent_gain_over_many_styles_excludes_zero() -> None:
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(40), 2).tolist()
    b = rng.random(80) < 0.6
    a = b | (rng.random(80) < 0.5)  # a hits wherever b does, and more
    d = paired_difference(_result({"a": a.tolist(), "b": b.tolist()}, labels), "a", "b", "map@1")
    assert d.worse == 0 and d.better > 10 and d.ci95[0] > 0


def test_compare_encoders_uses_the_first_and_names_bad_requests() -> None:
    result = _result({"a": [1, 1], "b": [1, 0], "c": [0, 0]}, [0, 1])
    diffs = compare_encoders(result, metrics=["map@1"])
    assert [(d.encoder, d.other) for d in diffs] == [("a", "b"), ("a", "c")]
    assert [d.difference for d in diffs] == [0.5, 1.0]
    with pytest.raises(KeyError, match="no encoder 'z'"):
        paired_difference(result, "a", "z", "map@1")
    with pytest.raises(KeyError, match="metric 'mAP' was not computed"):
        paired_difference(result, "a", "b", "mAP")


def test_standard_map_is_compared_only_where_it_was_computed() -> None:
    rng = np.random.default_rng(3)
    q, g, ql, gl = rng.normal(size=(6, 4)), rng.normal(size=(12, 4)), [0, 0, 1, 1, 2, 2], [0, 1, 2] * 4
    runs = {}
    for name in ("a", "b"):
        scores = evaluate_embeddings(q, g, ql, gl, ks=(1, 10), standard_map=False)
        runs[name] = EncoderRun(name, scores, None, 4, 0.0)  # type: ignore[arg-type]
    result = RetrievalResult({}, [1, 10], [_item(label, "query", i) for i, label in enumerate(ql)], [], runs)
    assert [d.metric for d in compare_encoders(result)] == ["map@1", "map@10"]
    with pytest.raises(KeyError, match="no encoder 'c'"):
        compare_encoders(result, "c")
