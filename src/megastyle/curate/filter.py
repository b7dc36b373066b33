"""Filter stage (optional): drop style groups whose images disagree under a style embedding.

Every image of one style id should look like one style. ``score_style_groups`` (the stage function,
one batch of groups at a time) embeds each group's images, L2-normalises them and records the mean and
minimum pairwise cosine, per-image outliers and the group's mean embedding. ``decide_styles`` then
compares every score with one cut on the mean pairwise cosine, set in one of three ways:

* ``absolute``: the cut is ``threshold`` itself;
* ``percentile``: the cut is the ``threshold``-th percentile of all scores (drops about that share);
* ``zscore``: the cut is ``mu + threshold * sigma`` of the inter-style similarity, i.e. of the mean
  cosine between the images of two different styles (exactly ``mean_a . mean_b`` of the groups' mean
  unit embeddings), over all or ``inter_pairs`` sampled pairs of styles. A group drawn from unrelated
  styles scores near ``mu`` and is dropped; a coherent one scores well above it.

Groups with fewer than ``min_images`` images (empty and singleton groups by default) have no pairwise
similarity: they are dropped with that reason and never enter the distributions. ``embed`` is any
``images -> (n, d)`` function; until the style encoder lands, ``color_texture_stats`` is a built-in,
training-free stand-in (colour histogram + gradient statistics).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from megastyle.data import ImageDecodeError, Reject, StyleRecord

Embedder = Callable[[list[Image.Image]], np.ndarray]
ThresholdMode = Literal["absolute", "percentile", "zscore"]
DEFAULT_THRESHOLDS: dict[str, float] = {"absolute": 0.8, "percentile": 5.0, "zscore": 2.0}
_MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation


@dataclass(frozen=True)
class StyleGroup:
    """All images of one style id."""

    style_id: int
    images: Sequence[Image.Image]


@dataclass(frozen=True)
class StyleScore:
    """Consistency of one style group; similarities are NaN when the group has fewer than two images."""

    style_id: int
    n_images: int
    mean_cosine: float
    min_cosine: float
    mean_embedding: np.ndarray | None = None  # mean of the unit embeddings (not re-normalised)
    outliers: tuple[int, ...] = ()  # image positions far below the group's typical similarity
    error: str | None = None


@dataclass(frozen=True)
class DroppedStyle:
    """A style the filter removed, and why."""

    style_id: int
    reason: str


@dataclass
class FilterResult:
    """Kept and dropped style ids, per-style scores and the cut that decided them."""

    kept: list[int]
    dropped: list[DroppedStyle]
    scores: dict[int, StyleScore]
    cut: float  # the mean-pairwise-cosine cut every mode resolves to
    inter_mean: float | None = None  # inter-style similarity distribution (None with < 2 scored styles)
    inter_std: float | None = None
    z_scores: dict[int, float] = field(default_factory=dict)


class FilterConfig(BaseModel):
    """How the filter decides; ``threshold`` defaults per mode (absolute 0.8, percentile 5, zscore 2)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: ThresholdMode = "zscore"
    threshold: float | None = None
    min_images: int = Field(2, ge=2)
    min_pair_cosine: float | None = Field(
        None, description="also drop groups whose least similar pair is below"
    )
    outlier_mads: float = Field(
        3.5, gt=0, description="outlier: this many robust sigmas below the group median"
    )
    outlier_min_gap: float = Field(
        0.05, ge=0, description="... and at least this far below it (tight groups)"
    )
    max_outlier_fraction: float | None = Field(None, ge=0, le=1, description="drop above this outlier share")
    inter_pairs: int = Field(20_000, ge=1, description="style pairs sampled for the inter-style distribution")
    seed: int = 0

    def resolved_threshold(self) -> float:
        """``threshold``, or the mode's default."""
        return DEFAULT_THRESHOLDS[self.mode] if self.threshold is None else self.threshold


# -- built-in training-free embedding -----------------------------------------------------------
_MAGNITUDE_EDGES = np.array([0.0, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, np.inf])
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def _gradient_stats(gray: np.ndarray, orientation_bins: int) -> np.ndarray:
    """Gradient-energy histogram (log-spaced magnitudes) and magnitude-weighted orientation histogram."""
    gx = (gray[1:-1, 2:] - gray[1:-1, :-2]) / 2
    gy = (gray[2:, 1:-1] - gray[:-2, 1:-1]) / 2
    magnitude = np.hypot(gx, gy).ravel()
    energy = np.histogram(magnitude, bins=_MAGNITUDE_EDGES)[0] / max(magnitude.size, 1)
    angle = (np.arctan2(gy, gx).ravel() % np.pi) / np.pi  # unsigned orientation in [0, 1)
    index = np.minimum((angle * orientation_bins).astype(np.int64), orientation_bins - 1)
    orientation = np.bincount(index, weights=magnitude, minlength=orientation_bins)
    orientation = orientation / max(float(magnitude.sum()), 1e-12)
    return np.sqrt(np.concatenate([energy, orientation]))  # sqrt: cosine of sqrt-histograms = Bhattacharyya


def color_texture_stats(
    images: Sequence[Image.Image],
    *,
    size: int = 96,
    color_bins: int = 4,
    orientation_bins: int = 8,
    texture_weight: float = 1.0,
) -> np.ndarray:
    """Training-free style stand-in, ``(n, d)``: joint RGB histogram + gradient statistics at two scales."""
    rows = []
    for image in images:
        rgb = (
            np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR), np.float32) / 255
        )
        index = np.minimum((rgb * color_bins).astype(np.int64), color_bins - 1)
        joint = (index[..., 0] * color_bins + index[..., 1]) * color_bins + index[..., 2]
        color = np.sqrt(np.bincount(joint.ravel(), minlength=color_bins**3) / joint.size)
        gray = rgb @ _LUMA
        half = gray[: size // 2 * 2, : size // 2 * 2].reshape(size // 2, 2, size // 2, 2).mean(axis=(1, 3))
        texture = np.concatenate(
            [_gradient_stats(gray, orientation_bins), _gradient_stats(half, orientation_bins)]
        )
        rows.append(np.concatenate([_unit(color), texture_weight * _unit(texture)]))
    width = color_bins**3 + 2 * (len(_MAGNITUDE_EDGES) - 1 + orientation_bins)
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, width), np.float32)


# -- scoring (the stage function) ---------------------------------------------------------------
def score_group_embeddings(
    style_id: int, embeddings: np.ndarray, outlier_mads: float = 3.5, min_gap: float = 0.05
) -> StyleScore:
    """Consistency of one style from its images' embeddings ``(n, d)``."""
    n = len(embeddings)
    norms = np.linalg.norm(embeddings, axis=1) if n else np.zeros(0)
    bad = [i for i in range(n) if not (np.isfinite(norms[i]) and norms[i] > 0)]
    if bad:
        return StyleScore(
            style_id, n, math.nan, math.nan, error=f"images {bad}: zero or non-finite embedding"
        )
    if n == 0:
        return StyleScore(style_id, 0, math.nan, math.nan)
    unit = embeddings / norms[:, None]
    mean_embedding = unit.mean(axis=0)
    if n == 1:
        return StyleScore(style_id, 1, math.nan, math.nan, mean_embedding)
    gram = unit @ unit.T
    off_diagonal = gram[~np.eye(n, dtype=bool)]
    leave_one_out = (gram.sum(axis=1) - np.diag(gram)) / (n - 1)  # each image's mean cosine to the others
    median = float(np.median(leave_one_out))
    spread = _MAD_TO_SIGMA * float(np.median(np.abs(leave_one_out - median)))
    # The gap floor keeps a near-perfect group (spread ~0) from calling its slightly-less-perfect images outliers.
    gap = max(outlier_mads * spread, min_gap, 1e-6)
    outliers = tuple(int(i) for i in np.flatnonzero(median - leave_one_out > gap))
    return StyleScore(
        style_id, n, float(off_diagonal.mean()), float(off_diagonal.min()), mean_embedding, outliers
    )


def score_style_groups(
    groups: Sequence[StyleGroup], embed: Embedder, *, outlier_mads: float = 3.5, outlier_min_gap: float = 0.05
) -> list[StyleScore]:
    """Stage function: embed every group of the batch in one call and score each group's consistency."""
    images = [image for group in groups for image in group.images]
    try:
        embeddings = _checked(embed(images), len(images)) if images else np.zeros((0, 1), np.float32)
    except Exception:
        # One bad image must not sink the batch: embed group by group and record the failures.
        return [_score_alone(group, embed, outlier_mads, outlier_min_gap) for group in groups]
    scores, start = [], 0
    for group in groups:
        stop = start + len(group.images)
        scores.append(
            score_group_embeddings(group.style_id, embeddings[start:stop], outlier_mads, outlier_min_gap)
        )
        start = stop
    return scores


def _checked(embeddings: np.ndarray, n: int) -> np.ndarray:
    array = np.asarray(embeddings, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] != n:
        raise ValueError(f"embed returned shape {array.shape}; expected ({n}, d)")
    return array


def _score_alone(group: StyleGroup, embed: Embedder, outlier_mads: float, min_gap: float) -> StyleScore:
    try:
        images = list(group.images)
        embeddings = _checked(embed(images), len(images)) if images else np.zeros((0, 1))
    except Exception as exc:  # any embedder error becomes this group's recorded failure
        return StyleScore(
            group.style_id, len(group.images), math.nan, math.nan, error=f"{type(exc).__name__}: {exc}"
        )
    return score_group_embeddings(group.style_id, embeddings, outlier_mads, min_gap)


# -- the decision (global: needs every score) ---------------------------------------------------
def inter_style_similarity(mean_embeddings: np.ndarray, max_pairs: int = 20_000, seed: int = 0) -> np.ndarray:
    """Mean cross-style image cosine for all (or ``max_pairs`` sampled) pairs of distinct styles."""
    count = len(mean_embeddings)
    if count < 2:
        return np.zeros(0)
    if count * (count - 1) // 2 <= max_pairs:
        first, second = np.triu_indices(count, k=1)
    else:
        rng = np.random.default_rng(seed)
        first = rng.integers(0, count, max_pairs)
        second = (first + rng.integers(1, count, max_pairs)) % count  # never equal to first
    return np.einsum("ij,ij->i", mean_embeddings[first], mean_embeddings[second])


def decide_styles(scores: Iterable[StyleScore], config: FilterConfig | None = None) -> FilterResult:
    """Keep or drop every style from its score; see the module docstring for the three modes."""
    config = config or FilterConfig()
    by_id = {s.style_id: s for s in scores}
    valid = [s for s in by_id.values() if s.error is None and s.n_images >= config.min_images]
    values = np.array([s.mean_cosine for s in valid])
    inter = inter_style_similarity(
        np.stack([s.mean_embedding for s in valid]) if len(valid) >= 2 else np.zeros((0, 1)),  # type: ignore[misc]
        config.inter_pairs,
        config.seed,
    )
    mu, sigma = (float(inter.mean()), max(float(inter.std()), 1e-12)) if inter.size else (None, None)
    threshold = config.resolved_threshold()
    if config.mode == "absolute":
        cut, how = threshold, "absolute threshold"
    elif config.mode == "percentile":
        cut = float(np.percentile(values, threshold)) if values.size else math.inf
        how = f"{threshold:g}th percentile of {values.size} styles"
    else:
        if mu is None or sigma is None:
            raise ValueError(
                f"zscore mode needs at least 2 styles with >= {config.min_images} images to measure"
                f" inter-style similarity, got {len(valid)}; use mode='absolute'"
            )
        cut, how = mu + threshold * sigma, f"inter-style mean {mu:.3f} + {threshold:g} x std {sigma:.3f}"
    result = FilterResult([], [], by_id, cut, mu, sigma if mu is not None else None)
    for style_id, score in by_id.items():
        if mu is not None and sigma is not None and not math.isnan(score.mean_cosine):
            result.z_scores[style_id] = (score.mean_cosine - mu) / sigma
        reason = _drop_reason(score, config, cut, how)
        if reason:
            result.dropped.append(DroppedStyle(style_id, reason))
        else:
            result.kept.append(style_id)
    return result


def _drop_reason(score: StyleScore, config: FilterConfig, cut: float, how: str) -> str | None:
    if score.error is not None:
        return f"embedding failed: {score.error}"
    if score.n_images == 0:
        return "empty group"
    if score.n_images < config.min_images:
        return f"only {score.n_images} image(s); consistency needs at least {config.min_images}"
    if score.mean_cosine < cut:
        return f"mean pairwise cosine {score.mean_cosine:.3f} < cut {cut:.3f} ({how})"
    if config.min_pair_cosine is not None and score.min_cosine < config.min_pair_cosine:
        return f"least similar pair has cosine {score.min_cosine:.3f} < {config.min_pair_cosine:g}"
    share = len(score.outliers) / score.n_images
    if config.max_outlier_fraction is not None and share > config.max_outlier_fraction:
        return f"{len(score.outliers)} of {score.n_images} images are outliers {list(score.outliers)}"
    return None


def filter_style_groups(
    groups: Sequence[StyleGroup], embed: Embedder = color_texture_stats, config: FilterConfig | None = None
) -> FilterResult:
    """Score ``groups`` with ``embed`` and decide; the local one-call form of the two steps."""
    config = config or FilterConfig()
    scores = score_style_groups(
        groups, embed, outlier_mads=config.outlier_mads, outlier_min_gap=config.outlier_min_gap
    )
    return decide_styles(scores, config)


def group_records_by_style(records: Iterable[StyleRecord]) -> tuple[list[StyleGroup], list[Reject]]:
    """Decode dataset rows into one ``StyleGroup`` per ``style_id`` (first-seen order); bad rows are rejects."""
    groups: dict[int, list[Image.Image]] = {}
    rejects: list[Reject] = []
    for record in records:
        if record.style_id is None:
            rejects.append(Reject(record.id, "filter: no style_id; rows are grouped by style_id"))
            continue
        try:
            groups.setdefault(record.style_id, []).append(record.pil_image())
        except ImageDecodeError as exc:
            rejects.append(Reject(record.id, f"filter: {exc}"))
    return [StyleGroup(style_id, images) for style_id, images in groups.items()], rejects


__all__ = [
    "DEFAULT_THRESHOLDS",
    "DroppedStyle",
    "Embedder",
    "FilterConfig",
    "FilterResult",
    "StyleGroup",
    "StyleScore",
    "color_texture_stats",
    "decide_styles",
    "filter_style_groups",
    "group_records_by_style",
    "inter_style_similarity",
    "score_group_embeddings",
    "score_style_groups",
]
