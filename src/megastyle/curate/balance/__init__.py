"""Balance stage: hierarchical k-means (bottom-up, with resampling) and balanced sampling to a target size.

Names are imported lazily: the configs are read by every command, the algorithms (torch) only by a run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from megastyle._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "CONTENT_TARGET": "config",
    "PAPER_KS": "config",
    "STYLE_TARGET": "config",
    "BalanceConfig": "config",
    "BalanceReport": "driver",
    "ClusterSpread": "driver",
    "ContentBalanceConfig": "config",
    "Hierarchy": "hierarchy",
    "KMeansResult": "clustering",
    "PromptBalanceConfig": "config",
    "StyleBalanceConfig": "config",
    "allocate_leaves": "sampling",
    "assign": "clustering",
    "balance": "driver",
    "balanced_sample": "sampling",
    "check_ks": "config",
    "cluster_spread": "driver",
    "hierarchical_kmeans": "hierarchy",
    "kmeans": "clustering",
    "leaf_distances": "sampling",
    "scale_ks": "config",
    "water_fill": "sampling",
}
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

if TYPE_CHECKING:
    from megastyle.curate.balance.clustering import KMeansResult, assign, kmeans
    from megastyle.curate.balance.config import (
        CONTENT_TARGET,
        PAPER_KS,
        STYLE_TARGET,
        BalanceConfig,
        ContentBalanceConfig,
        PromptBalanceConfig,
        StyleBalanceConfig,
        check_ks,
        scale_ks,
    )
    from megastyle.curate.balance.driver import BalanceReport, ClusterSpread, balance, cluster_spread
    from megastyle.curate.balance.hierarchy import Hierarchy, hierarchical_kmeans
    from megastyle.curate.balance.sampling import allocate_leaves, balanced_sample, leaf_distances, water_fill

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)
