"""Hierarchical k-means built bottom-up (Vo et al. 2024): each level clusters the centroids below it.

After the k-means of a level, *resampling-clustering* steps re-run k-means (fresh seeded init) on a
balanced resample of the level's points, at most ``r`` per current cluster (by default the ``r``
closest to its centroid, ``r`` = the median cluster size), then reassign every point to the new
centroids. Plain k-means spends centroids in proportion to density; in the resample every cluster
weighs about the same, so the refit moves centroids out of dense regions into sparse ones, and the
clusters spread over concepts rather than over points. A warm-started refit would not do this: the
``r`` closest points of a cluster average back to its own centroid, so Lloyd stays put. This is our
own reimplementation from the paper's description (the authors' code is non-commercial).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from megastyle.curate.balance.clustering import InitMethod, as_tensor, assign, kmeans
from megastyle.curate.balance.config import check_ks
from megastyle.curate.balance.grouping import take_per_group

ResampleStrategy = Literal["closest", "random"]


@dataclass
class Hierarchy:
    """Clusters of every level, finest first, and the parent of every cluster one level up."""

    centroids: list[np.ndarray]  # level l: (k_l, d)
    # Level 0: the level-0 cluster of every point; level l > 0: the level-l parent of every level-(l-1) cluster.
    assignments: list[np.ndarray]
    point_distances: np.ndarray  # squared distance of every point to its level-0 centroid
    spherical: bool

    @property
    def n_levels(self) -> int:
        """Number of levels (level 0 is the finest)."""
        return len(self.centroids)

    @property
    def n_points(self) -> int:
        """Number of clustered points."""
        return int(self.assignments[0].shape[0])

    @property
    def ks(self) -> list[int]:
        """Number of (non-empty) clusters at every level, finest first."""
        return [int(c.shape[0]) for c in self.centroids]

    def parents(self, level: int) -> np.ndarray:
        """The level ``level + 1`` cluster of every cluster of ``level``."""
        if not 0 <= level < self.n_levels - 1:
            raise ValueError(f"level {level} has no parents (levels 0..{self.n_levels - 2} do)")
        return self.assignments[level + 1]

    def point_labels(self, level: int) -> np.ndarray:
        """The ``level`` cluster of every point (parent mappings composed upward)."""
        labels = self.assignments[0]
        for up in range(1, level + 1):
            labels = self.assignments[up][labels]
        return labels

    def cluster_sizes(self, level: int) -> np.ndarray:
        """Number of points under every cluster of ``level``."""
        return np.bincount(self.point_labels(level), minlength=self.ks[level])

    def check(self) -> None:
        """Raise ``ValueError`` naming the level when a mapping is out of range or a cluster is empty."""
        for level, (cents, labels) in enumerate(zip(self.centroids, self.assignments, strict=True)):
            below = self.n_points if level == 0 else self.ks[level - 1]
            if labels.shape != (below,):
                raise ValueError(f"level {level}: {labels.shape[0]} assignments for {below} items below")
            if labels.size and (labels.min() < 0 or labels.max() >= cents.shape[0]):
                raise ValueError(f"level {level}: assignment outside 0..{cents.shape[0] - 1}")
            if np.bincount(labels, minlength=cents.shape[0]).min(initial=1) == 0:
                raise ValueError(f"level {level}: a cluster has no members")

    def save(self, path: str | Path) -> None:
        """Write the hierarchy to one ``.npz`` file."""
        arrays = {f"centroids_{i}": c for i, c in enumerate(self.centroids)}
        arrays |= {f"assignments_{i}": a for i, a in enumerate(self.assignments)}
        np.savez(path, point_distances=self.point_distances, spherical=self.spherical, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> Hierarchy:
        """Read a hierarchy written by ``save``."""
        with np.load(path) as data:
            n = sum(1 for name in data.files if name.startswith("centroids_"))
            hierarchy = cls(
                centroids=[data[f"centroids_{i}"] for i in range(n)],
                assignments=[data[f"assignments_{i}"] for i in range(n)],
                point_distances=data["point_distances"],
                spherical=bool(data["spherical"]),
            )
        hierarchy.check()
        return hierarchy


def _compact(labels: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop clusters without members and renumber the rest, so every cluster has a member."""
    keep = np.bincount(labels, minlength=centroids.shape[0]) > 0
    if keep.all():
        return labels, centroids
    remap = np.cumsum(keep) - 1
    return remap[labels], centroids[keep]


def _resample(
    labels: np.ndarray,
    dists: np.ndarray,
    k: int,
    r: int,
    strategy: ResampleStrategy,
    rng: np.random.Generator,
) -> np.ndarray:
    """At most ``r`` points per cluster: the closest to their centroid, or a seeded random pick."""
    key = dists if strategy == "closest" else rng.random(labels.shape[0])
    return take_per_group(labels, key, np.full(k, r, dtype=np.int64))


def hierarchical_kmeans(
    x: np.ndarray | torch.Tensor,
    ks: Sequence[int],
    resampling_steps: int = 2,
    points_per_cluster: int | None = None,
    seed: int = 0,
    iters: int = 20,
    resample_iters: int | None = None,
    resample_strategy: ResampleStrategy = "closest",
    spherical: bool = True,
    init: InitMethod = "auto",
    chunk_size: int | None = None,
    device: str | torch.device = "cpu",
    log: Callable[[str], None] | None = None,
) -> Hierarchy:
    """Cluster ``x`` with ``ks[0]`` clusters, those centroids with ``ks[1]``, and so on (finest first)."""
    points = as_tensor(x, device, spherical)
    ks = check_ks(ks, points.shape[0])
    if resampling_steps < 0:
        raise ValueError(f"resampling_steps must be >= 0, got {resampling_steps}")
    if points_per_cluster is not None and points_per_cluster < 1:
        raise ValueError(f"points_per_cluster must be >= 1, got {points_per_cluster}")
    resample_iters = iters if resample_iters is None else resample_iters
    rng = np.random.default_rng(seed)
    centroids: list[np.ndarray] = []
    assignments: list[np.ndarray] = []
    point_distances = np.empty(0, dtype=np.float32)
    level_points = points
    for level, k_asked in enumerate(ks):
        # Empty clusters dropped below may leave fewer points than asked for: never ask for more.
        k = min(k_asked, level_points.shape[0])
        level_seed = seed + 7919 * level
        fit = kmeans(level_points, k, iters, level_seed, spherical, chunk_size, device, init)
        labels, dists, cents = fit.assignments, fit.distances, fit.centroids
        # Median size: about half the clusters go in whole, the dense half is trimmed to it.
        r = points_per_cluster or max(1, math.ceil(float(np.median(np.bincount(labels, minlength=k)))))
        for step in range(resampling_steps):
            subset = _resample(labels, dists, k, r, resample_strategy, rng)
            if subset.size < k:  # too few points to refit k centroids: keep the current ones
                break
            refit = kmeans(
                level_points[torch.as_tensor(subset, device=level_points.device)],
                k,
                resample_iters,
                level_seed + step + 1,
                spherical,
                chunk_size,
                device,
                init,
            )
            cents = refit.centroids
            labels_t, dists_t = assign(
                level_points, torch.as_tensor(cents, device=level_points.device), spherical, chunk_size
            )
            labels, dists = labels_t.cpu().numpy(), dists_t.cpu().numpy()
        labels, cents = _compact(labels, cents)
        if level == 0:
            point_distances = dists
        centroids.append(cents)
        assignments.append(labels)
        if log is not None:
            sizes = np.bincount(labels)
            log(
                f"level {level}: k={cents.shape[0]} (asked {k_asked}), members per cluster {sizes.min()}..{sizes.max()}"
            )
        level_points = torch.as_tensor(cents, device=points.device)
    hierarchy = Hierarchy(centroids, assignments, point_distances, spherical)
    hierarchy.check()
    return hierarchy
