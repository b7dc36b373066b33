"""Matched content leakage: hand-computed values, a brute-force reference, and paired differences."""

from __future__ import annotations

import numpy as np
import pytest

import megastyle.bench.leakage as leakage_module
from megastyle.bench.compare import cluster_bootstrap_interval
from megastyle.bench.dataset_quality import dataset_quality
from megastyle.bench.leakage import (
    compare_leakage,
    matched_leakage,
    paired_leakage_difference,
    two_way_interval,
)
from megastyle.bench.report import leakage_paired_markdown, quality_markdown


def _at(*degrees: float) -> np.ndarray:
    rad = np.radians(degrees)
    return np.stack([np.cos(rad), np.sin(rad)], axis=1)


def test_hand_computed_value() -> None:
    # A holds contents x, y; B holds x, z, w. One same-content pair: (A_x, B_x), cosine cos 60° = 0.5.
    # Matched negatives: A_x·B_z = cos 100° < 0.5 (won), A_x·B_w = cos 30° > 0.5 (lost), B_x·A_y = cos 90° (won).
    x = _at(0, 150, 60, 100, 30)
    m = matched_leakage(x, ["A", "A", "B", "B", "B"], ["x", "y", "x", "z", "w"])
    assert m.pairs.tolist() == [[0, 2]]
    assert m.values.tolist() == pytest.approx([2 / 3])
    assert m.auc == pytest.approx(2 / 3)


def test_ties_count_half_and_extremes() -> None:
    styles = np.repeat(np.arange(6), 4)
    contents = np.concatenate([np.roll(np.arange(8), s)[:4] for s in range(6)])
    rng = np.random.default_rng(0)
    style_only = rng.normal(size=(6, 16))[styles]  # content-blind: every matched comparison ties
    assert matched_leakage(style_only, styles, contents).auc == pytest.approx(0.5)
    content_only = rng.normal(size=(8, 16))[contents]  # pure content: a same-content pair scores 1
    assert matched_leakage(content_only, styles, contents).auc == pytest.approx(1.0)


def _brute_force(x: np.ndarray, styles: np.ndarray, contents: np.ndarray) -> dict[tuple[int, int], float]:
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    out = {}
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            if contents[i] != contents[j] or styles[i] == styles[j]:
                continue
            # Cosines compare at 12 decimals (leakage.COSINE_DECIMALS), so exact ties stay ties.
            pos = round(x[i] @ x[j], 12)
            negs = [
                round(x[i] @ x[k], 12)
                for k in range(len(x))
                if styles[k] == styles[j] and contents[k] != contents[i]
            ]
            negs += [
                round(x[j] @ x[k], 12)
                for k in range(len(x))
                if styles[k] == styles[i] and contents[k] != contents[i]
            ]
            if negs:
                out[(i, j)] = float(np.mean([(pos > n) + 0.5 * (pos == n) for n in negs]))
    return out


@pytest.mark.parametrize(
    ("chunk", "values", "gram"), [(3, 1 << 24, 4096), (4096, 1 << 24, 4096), (3, 1 << 24, 0), (4096, 60, 0)]
)
def test_matches_a_brute_force_reference_with_uneven_styles(
    monkeypatch: pytest.MonkeyPatch, chunk: int, values: int, gram: int
) -> None:
    monkeypatch.setattr(leakage_module, "CHUNK_PAIRS", chunk)
    # gram 0: gather the vectors instead of reading one cosine matrix; 60 gathered floats = 2 pairs
    # per step with up to 6 images per style in 5 dimensions.
    monkeypatch.setattr(leakage_module, "CHUNK_VALUES", values)
    monkeypatch.setattr(leakage_module, "GRAM_MAX_IMAGES", gram)
    rng = np.random.default_rng(1)
    sizes = [1, 2, 5, 3, 4, 6]  # a one-image style pads the member table
    styles = np.repeat(np.arange(len(sizes)), sizes)
    contents = rng.integers(0, 4, len(styles))
    x = rng.normal(size=(len(styles), 5))
    m = matched_leakage(x, [f"s{s}" for s in styles], contents)
    assert len(m.values) > 10
    got = {(int(i), int(j)): float(v) for (i, j), v in zip(m.pairs, m.values, strict=True)}
    expected = _brute_force(x, styles, contents)
    assert got.keys() == expected.keys()
    assert [got[k] for k in expected] == pytest.approx(list(expected.values()))
    codes = np.unique(styles, return_inverse=True)[1]
    assert np.array_equal(m.styles, codes[m.pairs]) and (m.styles[:, 0] != m.styles[:, 1]).all()


def _confounded(leak: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """40 styles × 8 images; style directions range from near-identical to unrelated; a small content term."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=32)
    spread = rng.uniform(0.2, 3.0, size=(40, 1))  # how far each style sits from the shared direction
    style_vecs = base + spread * rng.normal(size=(40, 32))
    content_vecs = rng.normal(size=(64, 32))
    styles = np.repeat(np.arange(40), 8)
    contents = np.concatenate([rng.choice(64, 8, replace=False) for _ in range(40)])
    x = style_vecs[styles] + leak * content_vecs[contents] + 0.3 * rng.normal(size=(320, 32))
    return x, styles, contents


def test_matched_measure_sees_a_leak_the_global_one_cannot_separate_from_chance() -> None:
    x, styles, contents = _confounded(leak=0.2)
    quality = dataset_quality(x, styles, contents, seed=0)
    assert quality.leakage_auc_ci95 is not None and quality.leakage_matched_auc_ci95 is not None
    # Measured: global AUC 0.508 (0.466–0.551), matched 0.607 (0.558–0.667) over 771 pairs.
    assert quality.leakage_auc_ci95[0] < 0.5 < quality.leakage_auc_ci95[1]
    assert quality.leakage_matched_auc_ci95[0] > 0.55
    assert quality.matched_pairs > 100
    blind, _, _ = _confounded(leak=0.0)
    chance = dataset_quality(blind, styles, contents, seed=0)
    assert chance.leakage_matched_auc_ci95 is not None
    assert chance.leakage_matched_auc_ci95[0] < 0.5 < chance.leakage_matched_auc_ci95[1]


def test_paired_difference_of_a_blind_and_a_leaking_encoder() -> None:
    leaking, styles, contents = _confounded(leak=0.5)
    blind, _, _ = _confounded(leak=0.0)
    scores = {
        "blind": matched_leakage(blind, styles, contents),
        "leaking": matched_leakage(leaking, styles, contents),
        "blind again": matched_leakage(blind, styles, contents),
    }
    diffs = compare_leakage(scores)
    assert [d.other for d in diffs] == ["leaking", "blind again"]
    assert diffs[0].difference < 0 and diffs[0].ci95[1] < 0  # leaks less, beyond resampling noise
    assert diffs[0].less > diffs[0].more
    assert diffs[1].difference == 0.0 and diffs[1].ci95 == (0.0, 0.0)  # identical scores differ by exactly 0
    assert diffs[0].pairs == len(scores["blind"].values) and diffs[0].contents <= 64
    text = leakage_paired_markdown(diffs)
    assert "| leaking | " in text and f"{diffs[0].difference:+.3f}" in text


def test_bad_inputs_are_named() -> None:
    x, styles, contents = _confounded(leak=0.5)
    with pytest.raises(ValueError, match="320 embeddings, 319 style labels"):
        matched_leakage(x, styles[:-1], contents)
    a = matched_leakage(x, styles, contents)
    b = matched_leakage(x, styles, contents, max_pairs=50)
    assert len(b.values) <= 50
    with pytest.raises(ValueError, match="different pairs"):
        paired_leakage_difference({"a": a, "b": b}, "a", "b")
    with pytest.raises(KeyError, match="no encoder 'c'"):
        paired_leakage_difference({"a": a, "b": b}, "a", "c")


def test_sampling_is_seeded_and_no_pairs_gives_none() -> None:
    x, styles, contents = _confounded(leak=0.5)
    first, again = (matched_leakage(x, styles, contents, max_pairs=60, seed=4) for _ in range(2))
    other = matched_leakage(x, styles, contents, max_pairs=60, seed=5)
    assert np.array_equal(first.pairs, again.pairs) and not np.array_equal(first.pairs, other.pairs)
    disjoint = matched_leakage(x[:16], styles[:16], np.arange(16))  # no content shared by two styles
    assert disjoint.auc is None and disjoint.interval() is None
    assert compare_leakage({"a": disjoint, "b": disjoint}) == []  # nothing to compare, not an error
    with pytest.raises(ValueError, match="no same-content pairs"):
        paired_leakage_difference({"a": disjoint, "b": disjoint}, "a", "b")
    quality = dataset_quality(x[:16], styles[:16], np.arange(16))
    assert quality.leakage_matched_auc is None and quality.matched_pairs == 0
    assert "leakage_matched_auc" in quality_markdown({"e": quality})


def test_quality_table_keeps_names_and_intervals_at_80_columns() -> None:
    from rich.console import Console

    from megastyle.bench.report import quality_table

    x, styles, contents = _confounded(leak=0.2)
    quality = dataset_quality(x, styles, contents, seed=0)
    console = Console(width=80, record=True)
    quality_table({"same tower, caption-trained": quality, "gram": quality}, console)
    text = console.export_text()
    assert "gram" in text and "same tower," in text  # long names wrap inside their column
    assert f"{quality.leakage_matched_auc:.3f} (" in text and f"{quality.leakage_auc:.3f} (" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_two_way_interval_widens_where_styles_are_shared() -> None:
    # 400 pairs among 20 styles, each pair its own content: the values carry a per-style effect, so
    # pairs sharing a style are not independent and resampling contents alone is too narrow.
    rng = np.random.default_rng(0)
    styles = np.stack([rng.integers(0, 20, 400), rng.integers(0, 20, 400)], axis=1)
    effect = rng.normal(0, 0.2, 20)
    values = 0.5 + effect[styles[:, 0]] + effect[styles[:, 1]] + rng.normal(0, 0.05, 400)
    contents = np.arange(400)
    low, high = two_way_interval(values, contents, styles)
    c_low, c_high = cluster_bootstrap_interval(values, contents)
    assert low < values.mean() < high
    assert high - low > 2 * (c_high - c_low)
    assert two_way_interval(np.full(400, 0.25), contents, styles) == (0.25, 0.25)
    # Two strata: clusters are resampled within each, so the same labels in both are different clusters.
    strata = np.repeat([0, 1], 200)
    s_low, s_high = two_way_interval(values, contents % 200, styles, strata=strata)
    assert s_low < values.mean() < s_high
    with pytest.raises(ValueError, match="400 values for 399 contents"):
        two_way_interval(values, contents[:-1], styles)


def test_weighted_auc_counts_a_weight_of_k_as_k_copies() -> None:
    from megastyle.bench.dataset_quality import _pair_auc
    from megastyle.bench.leakage import weighted_auc

    rng = np.random.default_rng(2)
    pos, neg = rng.integers(0, 6, 30).astype(float), rng.integers(0, 6, 40).astype(float)  # many ties
    wp, wn = rng.integers(0, 4, 30), rng.integers(0, 4, 40)
    unique, inverse = np.unique(np.concatenate([pos, neg]), return_inverse=True)
    got = weighted_auc(inverse[:30], inverse[30:], wp.astype(float), wn.astype(float), len(unique))
    assert got == pytest.approx(_pair_auc(np.repeat(pos, wp), np.repeat(neg, wn)))
    ones = weighted_auc(inverse[:30], inverse[30:], np.ones(30), np.ones(40), len(unique))
    assert ones == pytest.approx(_pair_auc(pos, neg))


def test_exact_ties_break_the_same_way_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(-2, 3, size=(60, 8)).astype(float)  # small integers: many exactly equal cosines
    styles, contents = np.repeat(np.arange(10), 6), np.tile(np.arange(6), 10)
    from_matrix = matched_leakage(x, styles, contents)
    monkeypatch.setattr(leakage_module, "GRAM_MAX_IMAGES", 0)
    gathered = matched_leakage(x, styles, contents)
    assert np.array_equal(from_matrix.values, gathered.values)
    got = {(int(i), int(j)): float(v) for (i, j), v in zip(gathered.pairs, gathered.values, strict=True)}
    expected = _brute_force(x, styles, contents)
    assert [got[k] for k in expected] == pytest.approx(list(expected.values()))


def test_two_way_interval_takes_text_labels_and_names_an_empty_bootstrap() -> None:
    values = np.array([0.2, 0.4, 0.6, 0.8])
    styles = np.array([[0, 1], [1, 2], [2, 3], [3, 0]])
    as_ints = two_way_interval(values, np.array([0, 1, 2, 3]), styles, reps=50)
    as_text = two_way_interval(values, np.array(["a", "b", "c", "d"], dtype=object), styles, reps=50)
    assert as_ints == as_text  # the same clusters in the same order, whatever their labels' type
    one = np.array([0.7])
    # One pair of styles 0 and 1: a resample draws both only half the time; seed 0's single draw does not.
    with pytest.raises(ValueError, match="no resample of 1 pairs kept a pair"):
        two_way_interval(one, np.array([0]), np.array([[0, 1]]), reps=1, seed=0)
    assert two_way_interval(one, np.array([0]), np.array([[0, 1]]), reps=1, seed=1) == (0.7, 0.7)
    m = matched_leakage(_at(0, 150, 60, 100, 30), ["A", "A", "B", "B", "B"], ["x", "y", "x", "z", "w"])
    assert m.interval(reps=1, seed=0) is None  # the same draw: no interval rather than an error
