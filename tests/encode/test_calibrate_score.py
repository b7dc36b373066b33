"""ScoreCalibration: percentiles/z-scores against reference pair distributions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from megastyle.encode import ScoreCalibration


def clustered(n_styles: int = 20, per_style: int = 15, dim: int = 16, spread: float = 0.4, seed: int = 0):
    """Unit embeddings around one centre per style, so same-style pairs score higher."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_styles, dim))
    labels = np.repeat(np.arange(n_styles), per_style)
    points = centres[labels] + spread * rng.normal(size=(len(labels), dim))
    return points / np.linalg.norm(points, axis=1, keepdims=True), labels


def test_fit_with_labels_separates_same_from_different_style() -> None:
    embeddings, labels = clustered()
    cal = ScoreCalibration.fit(embeddings, labels, num_pairs=20_000, seed=0)
    assert cal.same_style is not None
    assert cal.same_style.mean > cal.different_style.mean + 0.3
    # A typical same-style score sits far up the different-style distribution.
    assert cal.percentile(cal.same_style.mean) > 90
    assert cal.percentile(cal.different_style.mean) == pytest.approx(50, abs=5)
    # The different-style sample really excludes same-label pairs: recompute it exactly.
    sims = embeddings @ embeddings.T
    different = sims[labels[:, None] != labels[None, :]]
    assert cal.different_style.mean == pytest.approx(different.mean(), abs=0.01)
    for score in (-0.2, 0.0, 0.3, 0.6):
        assert cal.percentile(score) == pytest.approx(100 * (different <= score).mean(), abs=1.0)


def test_percentile_and_zscore_are_monotonic_and_bounded() -> None:
    embeddings, labels = clustered(seed=1)
    cal = ScoreCalibration.fit(embeddings, labels, num_pairs=5_000)
    grid = np.linspace(-1.0, 1.0, 401)
    percentiles = cal.percentile(grid)
    assert np.all(np.diff(percentiles) >= 0)
    assert percentiles[0] == 0.0 and percentiles[-1] == 100.0
    assert np.all(np.diff(cal.zscore(grid)) > 0)
    assert cal.zscore(cal.different_style.mean) == pytest.approx(0.0, abs=1e-9)
    d = cal.different_style
    assert cal.zscore(d.mean + d.std) == pytest.approx(1.0)


def test_without_labels_random_pairs_count_as_different_style() -> None:
    rng = np.random.default_rng(3)
    embeddings = rng.normal(size=(300, 24))  # not normalised: fit normalises rows itself
    cal = ScoreCalibration.fit(embeddings, num_pairs=10_000)
    assert cal.same_style is None
    assert cal.different_style.count == 10_000
    # Random 24-d directions: cosine mean ≈ 0, std ≈ 1/sqrt(24).
    assert cal.different_style.mean == pytest.approx(0.0, abs=0.01)
    assert cal.different_style.std == pytest.approx(1 / np.sqrt(24), rel=0.05)
    assert cal.readout(0.5)["same_style_percentile"] is None


def test_fit_is_seeded_and_saves_as_json(tmp_path: Path) -> None:
    embeddings, labels = clustered(seed=2)
    a = ScoreCalibration.fit(embeddings, labels, num_pairs=2_000, seed=5, encoder="tiny-siglip")
    b = ScoreCalibration.fit(embeddings, labels, num_pairs=2_000, seed=5, encoder="tiny-siglip")
    c = ScoreCalibration.fit(embeddings, labels, num_pairs=2_000, seed=6, encoder="tiny-siglip")
    assert a == b and a != c
    loaded = ScoreCalibration.load(a.save(tmp_path / "cal.json"))
    assert loaded == a
    assert loaded.readout(0.42) == a.readout(0.42)
    (tmp_path / "other.json").write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="not a megastyle score calibration"):
        ScoreCalibration.load(tmp_path / "other.json")


def test_invalid_references() -> None:
    with pytest.raises(ValueError, match="n ≥ 2"):
        ScoreCalibration.fit(np.ones((1, 4)))
    with pytest.raises(ValueError, match="single style"):
        ScoreCalibration.fit(np.eye(4), labels=[0, 0, 0, 0])
    with pytest.raises(ValueError, match="labels for"):
        ScoreCalibration.fit(np.eye(4), labels=[0, 1])
