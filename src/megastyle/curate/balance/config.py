"""Balance-stage configuration: cluster counts per level, sampling target, k-means knobs."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Literal

from pydantic import Field, field_validator

from megastyle.config import CommandConfig

# MegaStyle++: 3 levels with k = 100000, 5000, 500 on ~1M deduplicated prompts (finest first).
PAPER_KS: tuple[int, ...] = (100_000, 5_000, 500)
PAPER_N_PROMPTS = 1_000_000
# The paper keeps 170K style prompts and 400K content prompts after balancing.
STYLE_TARGET = 170_000
CONTENT_TARGET = 400_000


def check_ks(ks: Sequence[int], n_points: int) -> list[int]:
    """Validate cluster counts per level (finest first): positive, strictly decreasing, ``ks[0] <= n``."""
    ks = [int(k) for k in ks]
    if not ks:
        raise ValueError("ks must name at least one level")
    if any(k < 1 for k in ks):
        raise ValueError(f"every level needs k >= 1, got ks={ks}")
    if any(a <= b for a, b in itertools.pairwise(ks)):
        raise ValueError(f"ks must strictly decrease from the finest level up, got ks={ks}")
    if ks[0] > n_points:
        raise ValueError(f"the finest level asks for k={ks[0]} clusters but there are only {n_points} points")
    return ks


def scale_ks(
    n_points: int,
    reference_ks: Sequence[int] = PAPER_KS,
    reference_n: int = PAPER_N_PROMPTS,
    min_k: int = 2,
) -> list[int]:
    """The paper's ks scaled in proportion to ``n_points``; levels that would fall under ``min_k`` are dropped."""
    if n_points < 1:
        raise ValueError(f"cannot choose cluster counts for {n_points} points")
    ks: list[int] = []
    for ref in reference_ks:
        k = min(max(1, round(n_points * ref / reference_n)), n_points)
        if ks:
            k = min(k, ks[-1] - 1)  # keep levels strictly decreasing after rounding
        if k < min_k:
            break
        ks.append(k)
    # Tiny inputs: one level of at most min_k clusters is still a valid hierarchy.
    return ks or [min(n_points, min_k)]


class BalanceConfig(CommandConfig):
    """Hierarchical k-means and balanced sampling for one prompt kind."""

    ks: list[int] | None = Field(
        None,
        description="clusters per level, finest first; unset = the paper's 100000/5000/500 per 1M, scaled",
    )
    target: int | None = Field(
        None, ge=0, description="items to keep; unset = keep all (unless target_fraction)"
    )
    target_fraction: float | None = Field(
        None, gt=0, le=1, description="share of the input to keep; wins over target when set"
    )
    strategy: Literal["random", "closest"] = Field("random", description="pick inside a leaf cluster")
    resampling_steps: int = Field(2, ge=0, description="resampling-clustering steps per level")
    points_per_cluster: int | None = Field(
        None, ge=1, description="points per cluster in a resample; unset = the level's median cluster size"
    )
    resample_strategy: Literal["closest", "random"] = Field(
        "closest", description="which points a resample keeps"
    )
    iters: int = Field(20, ge=0, description="Lloyd iterations of every k-means")
    resample_iters: int | None = Field(
        None, ge=0, description="Lloyd iterations of a resample refit; unset = iters"
    )
    init: Literal["auto", "kmeans++", "random"] = Field(
        "auto", description="centroid init; auto = k-means++ up to k=1024, random above"
    )
    spherical: bool = Field(True, description="cosine k-means on L2-normalised embeddings")
    seed: int = Field(0, description="seed of init, resampling and the random leaf pick")
    device: str = Field("cpu", description="torch device of the k-means (cpu, cuda, cuda:1, ...)")
    chunk_size: int | None = Field(
        None, ge=1, description="rows per distance chunk; unset = keep the score buffer near 256 MiB"
    )

    @field_validator("ks")
    @classmethod
    def _ks_shape(cls, ks: list[int] | None) -> list[int] | None:
        if ks is not None:
            check_ks(ks, n_points=max(ks, default=0))  # positivity and order; n is checked at run time
        return ks

    def resolve_ks(self, n_points: int) -> list[int]:
        """The cluster counts for ``n_points`` inputs: the configured ones (validated) or scaled ones."""
        return check_ks(self.ks if self.ks is not None else scale_ks(n_points), n_points)

    def resolve_target(self, n_points: int) -> int:
        """Number of items to keep out of ``n_points`` (never more than ``n_points``)."""
        if self.target_fraction is not None:
            return min(n_points, math.ceil(self.target_fraction * n_points))
        return n_points if self.target is None else min(self.target, n_points)


class StyleBalanceConfig(BalanceConfig):
    """Balance of the style prompts (the paper keeps 170K)."""

    target: int | None = Field(STYLE_TARGET, ge=0, description="style prompts to keep")


class ContentBalanceConfig(BalanceConfig):
    """Balance of the content prompts (the paper keeps 400K)."""

    target: int | None = Field(CONTENT_TARGET, ge=0, description="content prompts to keep")


class PromptBalanceConfig(CommandConfig):
    """The ``[balance]`` table of a recipe: one section per prompt kind, each with its own target."""

    toml_section = "balance"

    style: StyleBalanceConfig = Field(default_factory=StyleBalanceConfig)
    content: ContentBalanceConfig = Field(default_factory=ContentBalanceConfig)
