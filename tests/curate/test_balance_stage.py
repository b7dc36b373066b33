"""The balance stage: skewed data is flattened, config validation and scaling, spread numbers."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from torch_threads import one_torch_thread  # noqa: F401  (autouse fixture)

from megastyle.config import ConfigError, load_config
from megastyle.curate.balance import (
    CONTENT_TARGET,
    PAPER_KS,
    STYLE_TARGET,
    BalanceConfig,
    PromptBalanceConfig,
    balance,
    cluster_spread,
    scale_ks,
)

N_DENSE, N_SPARSE = 3, 30


@pytest.fixture(scope="module")
def skewed() -> tuple[np.ndarray, np.ndarray]:
    """3 dense blobs holding 90% of the points + 30 sparse blobs; returns (unit embeddings, blob id)."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(N_DENSE + N_SPARSE, 16))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    blob = np.repeat(np.arange(N_DENSE + N_SPARSE), [900] * N_DENSE + [10] * N_SPARSE)
    x = centers[blob] + 0.05 * rng.normal(size=(blob.size, 16))
    return x.astype(np.float32), blob


def test_balancing_flattens_a_skewed_pool(skewed: tuple[np.ndarray, np.ndarray]) -> None:
    x, blob = skewed
    dense = blob < N_DENSE
    assert dense.mean() == pytest.approx(0.9)
    config = BalanceConfig(ks=[200, 40, 8], target=165, resampling_steps=5, seed=0)
    report = balance(x, config)
    assert report.selected.size == 165 and report.n_input == x.shape[0]
    # Uniform over blobs would give the dense ones 3/33 ≈ 9%; measured 9% (5 resampling steps).
    assert dense[report.selected].mean() < 0.2
    # Every blob, sparse ones included, is represented.
    assert set(blob[report.selected].tolist()) == set(range(N_DENSE + N_SPARSE))
    # The card numbers say the same thing: the top-level spread got flatter.
    assert report.after.coefficient_of_variation < report.before.coefficient_of_variation
    assert report.after.normalized_entropy > report.before.normalized_entropy
    assert report.after.n_items == 165 and report.before.n_items == x.shape[0]
    card = json.loads(json.dumps(report.to_dict()))  # plain JSON for the dataset card
    assert card["n_selected"] == 165 and card["ks"] == report.hierarchy.ks
    assert sum(card["after"]["size_histogram"]["counts"]) == report.after.n_clusters


def test_resampling_helps_on_the_skewed_pool(skewed: tuple[np.ndarray, np.ndarray]) -> None:
    x, blob = skewed
    shares = {
        steps: (
            blob[balance(x, BalanceConfig(ks=[200, 40, 8], target=165, resampling_steps=steps)).selected] < 3
        ).mean()
        for steps in (0, 5)
    }
    assert shares[5] < shares[0]  # measured 0.23 -> 0.09


def test_balance_is_deterministic_and_closest_works(skewed: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = skewed
    config = BalanceConfig(ks=[60, 12], target=100, resampling_steps=1, strategy="closest", seed=4)
    a, b = balance(x, config), balance(x, config)
    np.testing.assert_array_equal(a.selected, b.selected)
    assert a.to_dict()["after"] == b.to_dict()["after"]


def test_targets_at_or_over_the_input_keep_everything(skewed: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = skewed
    report = balance(x[:300], BalanceConfig(target=STYLE_TARGET, iters=5))  # quickstart-sized: ks scaled
    np.testing.assert_array_equal(report.selected, np.arange(300))
    assert report.ks == scale_ks(300) == [30, 2]
    assert report.target == 300


def test_empty_input_is_an_error() -> None:
    with pytest.raises(ValueError, match="no embeddings"):
        balance(np.zeros((0, 4), dtype=np.float32), BalanceConfig())


def test_scale_ks_follows_the_paper() -> None:
    assert scale_ks(1_000_000) == list(PAPER_KS)
    assert scale_ks(100_000) == [10_000, 500, 50]
    assert scale_ks(2_000) == [200, 10]
    assert scale_ks(10) == [2]  # every scaled level under 2 clusters: one level of 2
    assert scale_ks(1) == [1]
    for n in (3, 17, 250, 999, 12_345):
        ks = scale_ks(n)
        assert ks[0] <= n and all(a > b for a, b in itertools.pairwise(ks))
    with pytest.raises(ValueError, match="0 points"):
        scale_ks(0)


def test_config_validates_ks_and_targets() -> None:
    with pytest.raises(ValueError, match="strictly decrease"):
        BalanceConfig(ks=[10, 20])
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        BalanceConfig(target=-1)
    config = BalanceConfig(ks=[500, 20])
    with pytest.raises(ValueError, match="k=500 clusters but there are only 100 points"):
        config.resolve_ks(100)
    assert BalanceConfig().resolve_target(1234) == 1234  # no target: keep everything
    assert BalanceConfig(target=100).resolve_target(1234) == 100
    assert BalanceConfig(target=100, target_fraction=0.5).resolve_target(1234) == 617


def test_prompt_config_keeps_separate_paper_targets(tmp_path: Path) -> None:
    default = PromptBalanceConfig()
    assert default.style.target == STYLE_TARGET == 170_000
    assert default.content.target == CONTENT_TARGET == 400_000
    recipe = tmp_path / "recipe.toml"
    recipe.write_text("[balance.style]\niters = 5\n\n[balance.content]\nstrategy = 'closest'\n")
    loaded = load_config(PromptBalanceConfig, recipe, ["--content.target", "1000"])
    # A section that sets other keys keeps its own default target.
    assert loaded.style.iters == 5 and loaded.style.target == STYLE_TARGET
    assert loaded.content.strategy == "closest" and loaded.content.target == 1000
    saved = tmp_path / "saved.toml"
    saved.write_text(loaded.to_toml())
    assert load_config(PromptBalanceConfig, saved) == loaded
    with pytest.raises(ConfigError, match=r"style\.ks"):
        load_config(PromptBalanceConfig, overrides=["--style.ks", "[5, 9]"])


def test_cluster_spread_hand_cases() -> None:
    even = cluster_spread([10, 10, 10, 10])
    assert even.coefficient_of_variation == 0 and even.max_min_ratio == 1
    assert even.normalized_entropy == pytest.approx(1.0)
    skew = cluster_spread([97, 1, 1, 1])
    assert skew.max_min_ratio == 97 and skew.normalized_entropy < 0.2
    assert skew.coefficient_of_variation == pytest.approx(np.std([97, 1, 1, 1]) / 25)
    with_empty = cluster_spread([5, 0])
    assert with_empty.max_min_ratio is None and with_empty.to_dict()["largest_share"] == 1.0
    counts, edges = cluster_spread([1, 2, 9]).histogram(bins=3)
    assert counts == [2, 0, 1] and edges == [0.0, 3.0, 6.0, 9.0]
