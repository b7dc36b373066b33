"""Balance stage: hierarchical k-means (bottom-up, with resampling) and balanced sampling to a target size."""

from megastyle.curate.balance.config import (
    CONTENT_TARGET,
    PAPER_KS,
    STYLE_TARGET,
    BalanceConfig,
    ContentBalanceConfig,
    PromptBalanceConfig,
    StyleBalanceConfig,
    scale_ks,
)
from megastyle.curate.balance.driver import BalanceReport, ClusterSpread, balance, cluster_spread
from megastyle.curate.balance.hierarchy import Hierarchy, check_ks, hierarchical_kmeans
from megastyle.curate.balance.kmeans import KMeansResult, assign, kmeans
from megastyle.curate.balance.sampling import allocate_leaves, balanced_sample, leaf_distances, water_fill

__all__ = [
    "CONTENT_TARGET",
    "PAPER_KS",
    "STYLE_TARGET",
    "BalanceConfig",
    "BalanceReport",
    "ClusterSpread",
    "ContentBalanceConfig",
    "Hierarchy",
    "KMeansResult",
    "PromptBalanceConfig",
    "StyleBalanceConfig",
    "allocate_leaves",
    "assign",
    "balance",
    "balanced_sample",
    "check_ks",
    "cluster_spread",
    "hierarchical_kmeans",
    "kmeans",
    "leaf_distances",
    "scale_ks",
    "water_fill",
]
