"""Dataset quality: hand-computed values, and content leakage ranks a content-sensitive embedder higher."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from megastyle.bench.baselines import ColorHistogramEmbedder, RandomEmbedder
from megastyle.bench.dataset_quality import dataset_quality, measure_dataset


def test_hand_computed_measures() -> None:
    x = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-0.6, 0.8]])
    quality = dataset_quality(x, ["A", "A", "B", "B"], ["x", "y", "x", "y"])
    assert quality.intra_style_consistency == pytest.approx((0.6 + 0.8) / 2)
    # Centroids (0.8, 0.4) and (-0.3, 0.9): cosine 0.12 / (√0.8 · √0.9).
    assert quality.inter_style_diversity == pytest.approx(1 - 0.12 / np.sqrt(0.8 * 0.9))
    # Same content, different style: (x0, x2) → 0, (x1, x3) → 0.28; unrelated: (x0, x3) → -0.6, (x1, x2) → 0.8.
    assert quality.leakage_same_content_mean == pytest.approx(0.14)
    assert quality.leakage_diff_content_mean == pytest.approx(0.1)
    assert quality.leakage_gap == pytest.approx(0.04)
    assert quality.leakage_auc == pytest.approx(0.5)  # 0 and 0.28 each beat -0.6 and lose to 0.8
    assert (quality.same_content_pairs, quality.diff_content_pairs) == (2, 2)
    assert quality.cross_style_mean_cosine == pytest.approx((0.0 - 0.6 + 0.8 + 0.28) / 4)


def test_auc_counts_ties_as_half_and_needs_two_styles() -> None:
    x = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    quality = dataset_quality(x, ["A", "A", "B", "B"], ["x", "y", "x", "y"])
    assert quality.leakage_auc == pytest.approx(0.5)
    with pytest.raises(ValueError, match="two styles"):
        dataset_quality(x, ["A"] * 4)


def test_leakage_is_higher_for_a_content_sensitive_embedder(procedural_shards: Path, layout_embedder) -> None:
    layout, _ = measure_dataset(procedural_shards, layout_embedder)
    palette, _ = measure_dataset(procedural_shards, ColorHistogramEmbedder())
    chance, _ = measure_dataset(procedural_shards, RandomEmbedder())
    assert layout.same_content_pairs == palette.same_content_pairs == 336  # 12 contents × 8 styles each
    # Measured: layout AUC 0.65, palette 0.48, random 0.52.
    assert layout.leakage_auc is not None and palette.leakage_auc is not None
    assert layout.leakage_auc > palette.leakage_auc + 0.1
    assert abs(chance.leakage_auc - 0.5) < 0.05
    # The palette embedder is the style-consistent one.
    assert palette.intra_style_consistency > layout.intra_style_consistency + 0.3


def test_leakage_interval_brackets_the_auc_and_separates_leaking_from_chance(
    procedural_shards: Path, layout_embedder
) -> None:
    layout, _ = measure_dataset(procedural_shards, layout_embedder)
    chance, _ = measure_dataset(procedural_shards, RandomEmbedder())
    for quality in (layout, chance):
        assert quality.leakage_auc_ci95 is not None and quality.leakage_auc is not None
        low, high = quality.leakage_auc_ci95
        # 12 contents and 16 styles resampled together: measured layout 0.65 (0.51–0.81).
        assert low < quality.leakage_auc < high and high - low < 0.35
    assert layout.leakage_auc_ci95[0] > 0.5  # leaks, beyond resampling noise
    assert chance.leakage_auc_ci95[0] < 0.5 < chance.leakage_auc_ci95[1]


def test_leakage_interval_is_seeded_and_optional() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8))
    styles, contents = np.repeat(np.arange(8), 5), np.tile(np.arange(5), 8)
    first = dataset_quality(x, styles, contents, seed=3).leakage_auc_ci95
    assert first == dataset_quality(x, styles, contents, seed=3).leakage_auc_ci95
    assert dataset_quality(x, styles, contents, bootstrap=0).leakage_auc_ci95 is None
