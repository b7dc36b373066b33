"""Balanced sampling from a cluster hierarchy: water-filling top-down, then a pick inside every leaf."""

from __future__ import annotations

from typing import Literal

import numpy as np

from megastyle.curate.balance.grouping import group_members, take_per_group
from megastyle.curate.balance.hierarchy import Hierarchy

LeafStrategy = Literal["random", "closest"]


def water_fill(sizes: np.ndarray | list[int], target: int) -> np.ndarray:
    """Split ``target`` across clusters: those under the fair share give all, the rest share evenly.

    The fair share is recomputed with the leftover after every fully taken cluster. The result sums
    to ``min(target, sum(sizes))``, never exceeds a size, and the shares of the clusters that are not
    fully taken differ by at most 1 (the extra units go to the largest clusters, ties to the lower index).
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    if sizes.ndim != 1:
        raise ValueError(f"sizes must be 1-D, got shape {sizes.shape}")
    if sizes.size and sizes.min() < 0:
        raise ValueError(f"cluster {int(sizes.argmin())} has a negative size {int(sizes.min())}")
    if target < 0:
        raise ValueError(f"target must be >= 0, got {target}")
    if target >= sizes.sum():
        return sizes.copy()
    allocation = np.zeros_like(sizes)
    order = np.argsort(sizes, kind="stable")  # ascending; ties by index
    remaining, m, i = int(target), sizes.size, 0
    # Ascending sizes: once one cluster exceeds the share, all later ones do too.
    while i < m and sizes[order[i]] <= remaining // (m - i):
        allocation[order[i]] = sizes[order[i]]
        remaining -= int(sizes[order[i]])
        i += 1
    rest = order[i:]
    share, extra = divmod(remaining, rest.size)
    allocation[rest] = share
    # Every cluster in ``rest`` holds more than ``share`` items, so ``share + 1`` always fits.
    by_size_desc = rest[np.lexsort((rest, -sizes[rest]))]
    allocation[by_size_desc[:extra]] += 1
    return allocation


def allocate_leaves(hierarchy: Hierarchy, target: int) -> np.ndarray:
    """Items to take from every level-0 cluster: water-filling at the top, then inside every parent."""
    top = hierarchy.n_levels - 1
    allocation = water_fill(hierarchy.cluster_sizes(top), target)
    for level in range(top, 0, -1):
        child_sizes = hierarchy.cluster_sizes(level - 1)
        child_allocation = np.zeros_like(child_sizes)
        for parent, children in enumerate(group_members(hierarchy.parents(level - 1), hierarchy.ks[level])):
            if allocation[parent]:
                child_allocation[children] = water_fill(child_sizes[children], int(allocation[parent]))
        allocation = child_allocation
    return allocation


def leaf_distances(hierarchy: Hierarchy, embeddings: np.ndarray) -> np.ndarray:
    """Squared distance of every embedding to its level-0 centroid (unit rows when spherical)."""
    x = np.asarray(embeddings, dtype=np.float32)
    if x.shape != (hierarchy.n_points, hierarchy.centroids[0].shape[1]):
        raise ValueError(
            f"embeddings have shape {x.shape}, the hierarchy was built on "
            f"{(hierarchy.n_points, hierarchy.centroids[0].shape[1])}"
        )
    if hierarchy.spherical:
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    diff = x - hierarchy.centroids[0][hierarchy.assignments[0]]
    return np.einsum("ij,ij->i", diff, diff)


def balanced_sample(
    hierarchy: Hierarchy,
    embeddings: np.ndarray | None,
    target: int,
    strategy: LeafStrategy = "random",
    seed: int = 0,
) -> np.ndarray:
    """Indices (ascending) of ``min(target, n)`` items spread evenly over the hierarchy's clusters.

    ``strategy="closest"`` takes the items nearest their leaf centroid (distances from ``embeddings``
    when given, else the ones stored at clustering time); ``"random"`` a seeded random pick per leaf.
    """
    if strategy not in ("random", "closest"):
        raise ValueError(f"unknown leaf strategy {strategy!r}: use 'random' or 'closest'")
    if target < 0:
        raise ValueError(f"target must be >= 0, got {target}")
    n = hierarchy.n_points
    if target >= n:
        return np.arange(n, dtype=np.int64)
    per_leaf = allocate_leaves(hierarchy, target)
    if strategy == "closest":
        key = leaf_distances(hierarchy, embeddings) if embeddings is not None else hierarchy.point_distances
    else:
        key = np.random.default_rng(seed).random(n)
    return take_per_group(hierarchy.assignments[0], key, per_leaf)
