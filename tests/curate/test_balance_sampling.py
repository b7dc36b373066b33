"""Balanced sampling: exact size, water-filled allocations, closest/random leaf picks, seeding."""

from __future__ import annotations

import numpy as np
import pytest
from torch_threads import one_torch_thread  # noqa: F401  (autouse fixture)

from megastyle.curate.balance import (
    Hierarchy,
    allocate_leaves,
    balanced_sample,
    hierarchical_kmeans,
    leaf_distances,
    water_fill,
)
from megastyle.curate.balance.grouping import group_members


@pytest.fixture(scope="module")
def embeddings() -> np.ndarray:
    rng = np.random.default_rng(5)
    centers = rng.normal(size=(10, 8))
    sizes = rng.integers(5, 120, size=10)
    x = np.repeat(centers, sizes, axis=0) + 0.2 * rng.normal(size=(sizes.sum(), 8))
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def hierarchy(embeddings: np.ndarray) -> Hierarchy:
    return hierarchical_kmeans(embeddings, [40, 8], resampling_steps=1, seed=0)


@pytest.mark.parametrize("strategy", ["random", "closest"])
@pytest.mark.parametrize("target", [0, 1, 37, 150])
def test_exact_size_unique_sorted(hierarchy: Hierarchy, strategy: str, target: int) -> None:
    selected = balanced_sample(hierarchy, None, target, strategy, seed=0)  # type: ignore[arg-type]
    assert selected.size == target
    assert np.array_equal(selected, np.unique(selected))
    assert selected.min(initial=0) >= 0 and selected.max(initial=0) < hierarchy.n_points


@pytest.mark.parametrize("target", [10_000, 10**9])
def test_target_at_least_the_input_returns_everything(hierarchy: Hierarchy, target: int) -> None:
    np.testing.assert_array_equal(balanced_sample(hierarchy, None, target), np.arange(hierarchy.n_points))
    np.testing.assert_array_equal(
        balanced_sample(hierarchy, None, hierarchy.n_points, "closest"), np.arange(hierarchy.n_points)
    )


def test_allocation_is_water_filled_at_every_level(hierarchy: Hierarchy) -> None:
    target = 120
    per_leaf = allocate_leaves(hierarchy, target)
    assert per_leaf.sum() == target and (per_leaf <= hierarchy.cluster_sizes(0)).all()
    # Rolled up to the top, the leaves give exactly the top-level water-filling of the target.
    per_top = np.bincount(hierarchy.parents(0), weights=per_leaf, minlength=hierarchy.ks[1]).astype(int)
    np.testing.assert_array_equal(per_top, water_fill(hierarchy.cluster_sizes(1), target))
    # Inside every top cluster, its share is water-filled across its leaves.
    leaf_sizes = hierarchy.cluster_sizes(0)
    for parent, children in enumerate(group_members(hierarchy.parents(0), hierarchy.ks[1])):
        np.testing.assert_array_equal(per_leaf[children], water_fill(leaf_sizes[children], per_top[parent]))
    # And the sample itself follows the leaf allocation.
    selected = balanced_sample(hierarchy, None, target)
    np.testing.assert_array_equal(
        np.bincount(hierarchy.assignments[0][selected], minlength=hierarchy.ks[0]), per_leaf
    )


def test_closest_takes_the_points_nearest_their_leaf_centroid(
    hierarchy: Hierarchy, embeddings: np.ndarray
) -> None:
    selected = balanced_sample(hierarchy, embeddings, 60, "closest")
    dist = leaf_distances(hierarchy, embeddings)
    np.testing.assert_allclose(dist, hierarchy.point_distances, atol=1e-4)
    chosen = np.zeros(hierarchy.n_points, dtype=bool)
    chosen[selected] = True
    leaf = hierarchy.assignments[0]
    checked = 0
    for cluster in np.unique(leaf[selected]):
        members = leaf == cluster
        if (members & ~chosen).any():
            assert dist[members & chosen].max() <= dist[members & ~chosen].min() + 1e-6
            checked += 1
    assert checked > 0  # some leaves were cut, so the ordering was actually exercised
    # Without embeddings the stored distances give the same pick.
    np.testing.assert_array_equal(selected, balanced_sample(hierarchy, None, 60, "closest"))


def test_random_pick_is_seeded(hierarchy: Hierarchy) -> None:
    a = balanced_sample(hierarchy, None, 60, "random", seed=1)
    b = balanced_sample(hierarchy, None, 60, "random", seed=1)
    c = balanced_sample(hierarchy, None, 60, "random", seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # Different seeds change which items, never how many per leaf.
    leaf = hierarchy.assignments[0]
    np.testing.assert_array_equal(
        np.bincount(leaf[a], minlength=hierarchy.ks[0]), np.bincount(leaf[c], minlength=hierarchy.ks[0])
    )


def test_bad_arguments(hierarchy: Hierarchy, embeddings: np.ndarray) -> None:
    with pytest.raises(ValueError, match="unknown leaf strategy"):
        balanced_sample(hierarchy, None, 5, "farthest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="target must be >= 0"):
        balanced_sample(hierarchy, None, -1)
    with pytest.raises(ValueError, match="embeddings have shape"):
        balanced_sample(hierarchy, embeddings[:10], 5, "closest")
