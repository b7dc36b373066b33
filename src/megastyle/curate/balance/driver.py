"""The balance driver: hierarchical k-means, balanced sampling, and the spread numbers for the card."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from megastyle.curate.balance.config import BalanceConfig
from megastyle.curate.balance.hierarchy import Hierarchy, hierarchical_kmeans
from megastyle.curate.balance.sampling import balanced_sample


@dataclass
class ClusterSpread:
    """How evenly items spread over clusters: sizes plus summary numbers."""

    sizes: list[int]  # items per cluster, in cluster order
    coefficient_of_variation: float  # std / mean of the sizes (0 = perfectly even)
    max_min_ratio: float | None  # largest / smallest size; None when a cluster is empty
    normalized_entropy: float  # entropy of the size distribution / log(#clusters) (1 = perfectly even)

    @property
    def n_items(self) -> int:
        """Total items."""
        return int(sum(self.sizes))

    @property
    def n_clusters(self) -> int:
        """Number of clusters."""
        return len(self.sizes)

    def histogram(self, bins: int = 10) -> tuple[list[int], list[float]]:
        """Cluster counts per size bin and the bin edges (``bins`` equal bins over 0..max size)."""
        top = max(self.sizes, default=0)
        counts, edges = np.histogram(self.sizes, bins=bins, range=(0, max(top, 1)))
        return counts.tolist(), edges.tolist()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready numbers for the dataset card."""
        counts, edges = self.histogram()
        return {
            "n_items": self.n_items,
            "n_clusters": self.n_clusters,
            "coefficient_of_variation": self.coefficient_of_variation,
            "max_min_ratio": self.max_min_ratio,
            "normalized_entropy": self.normalized_entropy,
            "largest_share": max(self.sizes, default=0) / max(self.n_items, 1),
            "size_histogram": {"counts": counts, "edges": edges},
        }


def cluster_spread(sizes: np.ndarray | list[int]) -> ClusterSpread:
    """Summary numbers of a cluster-size vector."""
    s = np.asarray(sizes, dtype=np.float64)
    if s.size == 0 or s.sum() == 0:
        return ClusterSpread([int(v) for v in s], 0.0, None, 0.0)
    cv = float(s.std() / s.mean())
    ratio = float(s.max() / s.min()) if s.min() > 0 else None
    p = s[s > 0] / s.sum()
    entropy = float(-(p * np.log(p)).sum() / math.log(s.size)) if s.size > 1 else 1.0
    return ClusterSpread([int(v) for v in s], cv, ratio, entropy)


@dataclass
class BalanceReport:
    """What the balance stage kept and how the cluster spread changed."""

    selected: np.ndarray  # ascending indices into the input embeddings
    n_input: int
    target: int
    ks: list[int]  # non-empty clusters per level, finest first
    before: ClusterSpread  # top-level cluster sizes of the input
    after: ClusterSpread  # top-level cluster sizes of the selection
    hierarchy: Hierarchy = field(repr=False)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The card's view: counts, levels and before/after spread (no per-item arrays)."""
        return {
            "n_input": self.n_input,
            "n_selected": int(self.selected.size),
            "target": self.target,
            "ks": self.ks,
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "seconds": self.seconds,
        }


def balance(
    embeddings: np.ndarray | torch.Tensor, config: BalanceConfig, log: Callable[[str], None] | None = None
) -> BalanceReport:
    """Cluster ``embeddings`` hierarchically and keep a balanced subset of ``config``'s target size."""
    started = time.perf_counter()
    n = int(embeddings.shape[0])
    if n == 0:
        raise ValueError("balance got no embeddings: there is nothing to cluster")
    ks = config.resolve_ks(n)
    target = config.resolve_target(n)
    hierarchy = hierarchical_kmeans(
        embeddings,
        ks,
        resampling_steps=config.resampling_steps,
        points_per_cluster=config.points_per_cluster,
        seed=config.seed,
        iters=config.iters,
        resample_iters=config.resample_iters,
        resample_strategy=config.resample_strategy,
        spherical=config.spherical,
        init=config.init,
        chunk_size=config.chunk_size,
        device=config.device,
        log=log,
    )
    # Stored leaf distances serve the "closest" pick: no second pass over the embeddings.
    selected = balanced_sample(hierarchy, None, target, config.strategy, config.seed)
    top_labels = hierarchy.point_labels(hierarchy.n_levels - 1)
    k_top = hierarchy.ks[-1]
    return BalanceReport(
        selected=selected,
        n_input=n,
        target=target,
        ks=hierarchy.ks,
        before=cluster_spread(np.bincount(top_labels, minlength=k_top)),
        after=cluster_spread(np.bincount(top_labels[selected], minlength=k_top)),
        hierarchy=hierarchy,
        seconds=time.perf_counter() - started,
    )
