"""Hierarchical k-means: level mappings consistent, ks validated, resampling spreads the centroids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from torch_threads import one_torch_thread  # noqa: F401  (autouse fixture)

from megastyle.curate.balance import Hierarchy, check_ks, hierarchical_kmeans


def _unit_blobs(n_blobs: int, per_blob: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_blobs, dim))
    x = np.repeat(centers, per_blob, axis=0) + 0.1 * rng.normal(size=(n_blobs * per_blob, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def hierarchy() -> Hierarchy:
    return hierarchical_kmeans(_unit_blobs(12, 40, 8, seed=0), [60, 12, 3], resampling_steps=2, seed=0)


def test_every_level_maps_into_the_next(hierarchy: Hierarchy) -> None:
    hierarchy.check()
    assert hierarchy.n_levels == 3 and hierarchy.n_points == 480
    assert hierarchy.ks == [60, 12, 3]
    for level in range(hierarchy.n_levels - 1):
        parents = hierarchy.parents(level)
        assert parents.shape == (hierarchy.ks[level],)
        assert set(parents.tolist()) == set(range(hierarchy.ks[level + 1]))  # no childless parent
    with pytest.raises(ValueError, match="has no parents"):
        hierarchy.parents(2)


def test_point_labels_compose_the_parent_maps(hierarchy: Hierarchy) -> None:
    leaf = hierarchy.assignments[0]
    top = hierarchy.point_labels(2)
    np.testing.assert_array_equal(top, hierarchy.assignments[2][hierarchy.assignments[1][leaf]])
    # Points that share a leaf share every ancestor, and sizes add up level by level.
    for level in range(hierarchy.n_levels):
        sizes = hierarchy.cluster_sizes(level)
        assert sizes.sum() == hierarchy.n_points and (sizes > 0).all()
        if level:
            below = hierarchy.cluster_sizes(level - 1)
            np.testing.assert_array_equal(sizes, np.bincount(hierarchy.parents(level - 1), weights=below))


def test_upper_level_centroids_are_close_to_their_children(hierarchy: Hierarchy) -> None:
    # A level's centroids are clustered by the next: each child is nearer its own parent than average.
    for level in range(hierarchy.n_levels - 1):
        children, parents = hierarchy.centroids[level], hierarchy.centroids[level + 1]
        sims = children @ parents.T
        own = sims[np.arange(len(children)), hierarchy.parents(level)]
        np.testing.assert_allclose(own, sims.max(1), atol=1e-5)  # the parent is the nearest centroid


def test_point_distances_are_to_the_leaf_centroid(hierarchy: Hierarchy) -> None:
    x = _unit_blobs(12, 40, 8, seed=0)
    diff = x - hierarchy.centroids[0][hierarchy.assignments[0]]
    np.testing.assert_allclose(hierarchy.point_distances, (diff**2).sum(1), atol=1e-4)


def test_save_and_load_round_trip(hierarchy: Hierarchy, tmp_path: Path) -> None:
    path = tmp_path / "h.npz"
    hierarchy.save(path)
    loaded = Hierarchy.load(path)
    assert loaded.ks == hierarchy.ks and loaded.spherical == hierarchy.spherical
    for a, b in zip(loaded.assignments, hierarchy.assignments, strict=True):
        np.testing.assert_array_equal(a, b)


def test_same_seed_same_hierarchy() -> None:
    x = _unit_blobs(6, 30, 5, seed=1)
    a = hierarchical_kmeans(x, [20, 4], resampling_steps=1, seed=3)
    b = hierarchical_kmeans(x, [20, 4], resampling_steps=1, seed=3)
    for ca, cb in zip(a.centroids, b.centroids, strict=True):
        np.testing.assert_array_equal(ca, cb)
    np.testing.assert_array_equal(a.assignments[1], b.assignments[1])


def test_resampling_moves_centroids_out_of_a_dense_core() -> None:
    # One dense blob (90% of the points) inside a sparse uniform square: plain k-means spends many
    # centroids on the blob; refitting on a per-cluster-balanced resample moves them out.
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(scale=0.3, size=(4500, 2)), rng.uniform(-5, 5, size=(500, 2))])
    x = x.astype(np.float32)

    def in_core(steps: int) -> int:
        h = hierarchical_kmeans(x, [20], resampling_steps=steps, spherical=False, seed=1)
        return int((np.linalg.norm(h.centroids[0], axis=1) < 1).sum())

    plain, resampled = in_core(0), in_core(3)
    assert plain >= 5  # measured 7 of 20
    assert resampled <= 2  # measured 1
    random_pick = hierarchical_kmeans(
        x, [20], resampling_steps=3, resample_strategy="random", spherical=False, seed=1
    )
    assert int((np.linalg.norm(random_pick.centroids[0], axis=1) < 1).sum()) <= 2


def test_duplicate_points_leave_no_empty_cluster() -> None:
    # Only 5 distinct points but 8 clusters asked: empties are dropped, the mapping stays consistent.
    x = np.repeat(np.eye(5, dtype=np.float32), 6, axis=0)
    h = hierarchical_kmeans(x, [8, 3], resampling_steps=1, seed=0)
    h.check()
    assert h.ks[0] <= 5 and h.ks[1] <= 3
    assert (h.cluster_sizes(0) > 0).all()


@pytest.mark.parametrize(
    ("ks", "n", "message"),
    [
        ([], 10, "at least one level"),
        ([5, 0], 10, "k >= 1"),
        ([5, 5], 10, "strictly decrease"),
        ([3, 5], 10, "strictly decrease"),
        ([20, 5], 10, "k=20 clusters but there are only 10 points"),
    ],
)
def test_check_ks_rejects_bad_levels(ks: list[int], n: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_ks(ks, n)


def test_bad_resampling_arguments() -> None:
    x = _unit_blobs(2, 10, 3, seed=0)
    with pytest.raises(ValueError, match="resampling_steps"):
        hierarchical_kmeans(x, [4], resampling_steps=-1)
    with pytest.raises(ValueError, match="points_per_cluster"):
        hierarchical_kmeans(x, [4], points_per_cluster=0)
