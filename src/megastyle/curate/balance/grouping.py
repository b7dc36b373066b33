"""Vectorised per-group selection: the first ``m_g`` members of every group by a sort key."""

from __future__ import annotations

import numpy as np


def take_per_group(labels: np.ndarray, key: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Indices of the ``counts[g]`` members of each group ``g`` with the smallest ``key``, ascending."""
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    if labels.shape != key.shape:
        raise ValueError(f"labels {labels.shape} and key {key.shape} must have the same shape")
    if labels.size == 0:
        return np.empty(0, dtype=np.int64)
    # One lexsort orders members by (group, key); a member's rank is its offset from its group's start.
    order = np.lexsort((key, labels))
    sorted_labels = labels[order]
    sizes = np.bincount(sorted_labels, minlength=counts.shape[0])
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    ranks = np.arange(order.size) - starts[sorted_labels]
    chosen = order[ranks < counts[sorted_labels]]
    chosen.sort()
    return chosen


def group_members(labels: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """Member indices of every group ``0..n_groups-1`` (ascending inside each group)."""
    order = np.argsort(labels, kind="stable")
    bounds = np.cumsum(np.bincount(labels, minlength=n_groups))[:-1]
    return np.split(order, bounds)
