"""Dataset quality under an embedder: intra-style consistency, inter-style diversity, content leakage.

- Intra-style consistency: per style, the mean cosine over distinct image pairs; averaged over
  styles (high = a style's images look alike to the encoder).
- Inter-style diversity: ``1 − mean cosine`` between the L2-normalised style centroids (over
  all centroid pairs, or a seeded sample of them for many styles); also the mean cosine of
  sampled cross-style image pairs.
- Content leakage: cosines of *different-style* pairs that share a content (``content_id``,
  else the content text) against different-style pairs that do not (all pairs when there are
  at most ``max_pairs``, else seeded samples). Reported as the raw gap
  in means and as an AUC (probability that a same-content pair outscores a different-content
  pair; 0.5 = no leakage). The AUC does not depend on an encoder's cosine scale, so it compares
  across encoders; the raw gap does not. Its 95% interval comes from a bootstrap that resamples
  contents and styles together (``bench.leakage.two_way_auc_interval``): pairs that share a content
  or a style are not independent.
- Matched content leakage (``bench.leakage``): the same question with the style pair held fixed, each
  same-content pair against pairs of the same two styles that do not share the content. It removes
  the spread of style-pair similarity that the global AUC compares across, so it sees smaller leaks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from megastyle.bench.encoders import Embedder
from megastyle.bench.leakage import (
    MatchedLeakage,
    matched_leakage,
    normalise_rows,
    pair_cosines,
    same_content_pairs,
    two_way_auc_interval,
)
from megastyle.data import Reject, ShardReader, build_style_index, decode_image
from megastyle.progress import step


@dataclass
class DatasetQuality:
    """Quality measures of one dataset sample under one embedder, with the counts behind them."""

    intra_style_consistency: float
    inter_style_diversity: float
    cross_style_mean_cosine: float
    leakage_same_content_mean: float | None
    leakage_diff_content_mean: float | None
    leakage_gap: float | None
    leakage_auc: float | None
    leakage_auc_ci95: tuple[float, float] | None
    leakage_matched_auc: float | None
    leakage_matched_auc_ci95: tuple[float, float] | None
    styles: int
    images: int
    same_content_pairs: int
    diff_content_pairs: int
    matched_pairs: int
    centroid_pairs: int

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON and tables."""
        return asdict(self)


def _pair_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(pos > neg) + ½ P(pos = neg), from average ranks (Mann–Whitney U)."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([positive, negative]), method="average")
    n_pos, n_neg = len(positive), len(negative)
    u = ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def dataset_quality(
    embeddings: np.ndarray,
    style_labels: Sequence[object],
    content_labels: Sequence[object] | None = None,
    *,
    max_pairs: int = 200_000,
    seed: int = 0,
    bootstrap: int = 200,
    matched: MatchedLeakage | None = None,
) -> DatasetQuality:
    """Compute the three measures from embeddings and labels (pairs sampled beyond ``max_pairs``).

    ``matched``: the matched leakage of these same embeddings and labels when the caller has it already
    (``matched_leakage`` with the same ``max_pairs`` and ``seed``), so it is not computed twice.
    """
    x = normalise_rows(np.asarray(embeddings, dtype=np.float64))
    styles = np.asarray(style_labels)
    if len(styles) != len(x):
        raise ValueError(f"{len(styles)} style labels for {len(x)} embeddings")
    rng = np.random.default_rng(seed)
    groups: dict[object, list[int]] = defaultdict(list)
    for i, label in enumerate(styles.tolist()):
        groups[label].append(i)
    if len(groups) < 2:
        raise ValueError("dataset quality needs at least two styles")

    intra = []
    for rows in groups.values():
        if len(rows) >= 2:
            total = x[rows].sum(axis=0)
            # Mean over distinct pairs without forming the n×n matrix: (|Σx|² − Σ|x|²) / (n(n−1)).
            intra.append((total @ total - len(rows)) / (len(rows) * (len(rows) - 1)))
    centroids = normalise_rows(np.stack([x[rows].mean(axis=0) for rows in groups.values()]))
    k = len(centroids)
    all_pairs = k * (k - 1) // 2
    if all_pairs <= max_pairs:
        sims = centroids @ centroids.T
        centroid_mean = float(sims[np.triu_indices(k, 1)].mean())
        centroid_pairs = all_pairs
    else:
        a, b = rng.integers(0, k, max_pairs), rng.integers(0, k, max_pairs)
        keep = a != b
        centroid_mean = float(pair_cosines(centroids, a[keep], b[keep]).mean())
        centroid_pairs = int(keep.sum())
    a, b = _pairs(len(x), max_pairs, rng)
    cross = styles[a] != styles[b]
    cross_mean = float(pair_cosines(x, a[cross], b[cross]).mean()) if cross.any() else float("nan")

    same_mean = diff_mean = gap = auc = ci = matched_auc = matched_ci = None
    n_same = n_diff = n_matched = 0
    if content_labels is not None:
        contents = np.asarray(content_labels)
        if len(contents) != len(x):
            raise ValueError(f"{len(contents)} content labels for {len(x)} embeddings")
        same_pairs = same_content_pairs(contents, styles, max_pairs, rng)
        unrelated = cross & (contents[a] != contents[b])
        if len(same_pairs) and unrelated.any():
            same = pair_cosines(x, same_pairs[:, 0], same_pairs[:, 1])
            diff = pair_cosines(x, a[unrelated], b[unrelated])
            same_mean, diff_mean = float(same.mean()), float(diff.mean())
            gap, auc = same_mean - diff_mean, _pair_auc(same, diff)
            n_same, n_diff = len(same), len(diff)
            if bootstrap:
                na, nb = a[unrelated], b[unrelated]
                try:
                    ci = two_way_auc_interval(
                        same,
                        diff,
                        (contents[same_pairs[:, 0]], styles[same_pairs]),
                        (np.stack([contents[na], contents[nb]], 1), np.stack([styles[na], styles[nb]], 1)),
                        reps=bootstrap,
                        rng=rng,
                    )
                except ValueError:  # too few contents and styles for any resample to keep both kinds
                    ci = None
        if matched is None:
            matched = matched_leakage(x, styles, contents, max_pairs=max_pairs, seed=seed)
        elif len(matched.pairs) and int(matched.pairs.max()) >= len(x):
            raise ValueError("matched leakage was measured on other images than these embeddings")
        matched_auc, n_matched = matched.auc, len(matched.values)
        if bootstrap and n_matched:
            matched_ci = matched.interval(reps=bootstrap, seed=seed)
    return DatasetQuality(
        intra_style_consistency=float(np.mean(intra)) if intra else float("nan"),
        inter_style_diversity=1.0 - centroid_mean,
        cross_style_mean_cosine=cross_mean,
        leakage_same_content_mean=same_mean,
        leakage_diff_content_mean=diff_mean,
        leakage_gap=gap,
        leakage_auc=auc,
        leakage_auc_ci95=ci,
        leakage_matched_auc=matched_auc,
        leakage_matched_auc_ci95=matched_ci,
        styles=len(groups),
        images=len(x),
        same_content_pairs=n_same,
        diff_content_pairs=n_diff,
        matched_pairs=n_matched,
        centroid_pairs=centroid_pairs,
    )


def _pairs(n: int, limit: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Every pair i < j when there are at most ``limit``, else ``limit`` random pairs with i ≠ j."""
    if n * (n - 1) // 2 <= limit:
        a, b = np.triu_indices(n, 1)
        return a, b
    a, b = rng.integers(0, n, limit), rng.integers(0, n, limit)
    keep = a != b
    return a[keep], b[keep]


def measure_encoders(
    images: Sequence[Any],
    style_labels: Sequence[object],
    content_labels: Sequence[object],
    encoders: Mapping[str, Embedder],
    *,
    max_pairs: int = 200_000,
    seed: int = 0,
    batch_size: int = 32,
    progress: bool = False,
) -> tuple[dict[str, DatasetQuality], dict[str, MatchedLeakage]]:
    """Dataset quality and matched leakage of each encoder on the same images, so on the same pairs."""
    qualities, matched = {}, {}
    for name, embedder in encoders.items():
        with step(f"dataset quality: {name} on {len(images)} images", enabled=progress):
            embeddings = np.asarray(embedder.embed_images(images, batch_size=batch_size), dtype=np.float32)
            matched[name] = matched_leakage(
                embeddings, style_labels, content_labels, max_pairs=max_pairs, seed=seed
            )
            qualities[name] = dataset_quality(
                embeddings,
                style_labels,
                content_labels,
                max_pairs=max_pairs,
                seed=seed,
                matched=matched[name],
            )
    return qualities, matched


@dataclass
class DatasetSample:
    """Decoded images of a seeded style sample, with their style and content labels."""

    images: list[Any]
    styles: list[int]
    contents: list[str]
    rejects: list[Reject]


def sample_dataset(
    source: str | Path | Sequence[str | Path],
    *,
    max_styles: int | None = 200,
    max_images_per_style: int = 8,
    seed: int = 0,
) -> DatasetSample:
    """Sample styles and their images (seeded) from shards and decode them; bad images are recorded."""
    reader = ShardReader(source, columns=["id", "image", "content", "content_id"])
    index = build_style_index(reader)
    rng = np.random.default_rng(seed)
    labels = np.arange(len(index))
    if max_styles is not None and len(labels) > max_styles:
        labels = np.sort(rng.choice(labels, size=max_styles, replace=False))
    rows: list[tuple[int, int]] = []
    for label in labels.tolist():
        style_rows = index.rows_for_label(label)
        if len(style_rows) > max_images_per_style:
            style_rows = np.sort(rng.choice(style_rows, size=max_images_per_style, replace=False))
        rows.extend((label, int(r)) for r in style_rows)
    rows.sort(key=lambda pair: pair[1])  # file order: row groups are read once
    sample = DatasetSample([], [], [], [])
    for label, row in rows:
        record = reader.get_row(row)
        try:
            sample.images.append(decode_image((record["image"] or {}).get("bytes"), item=record["id"]))
        except ValueError as err:
            sample.rejects.append(Reject(record["id"], f"decode: {err}"))
            continue
        sample.styles.append(label)
        cid, text = record.get("content_id"), record.get("content")
        # A row with neither id nor text shares its content with no other row (never a leakage pair).
        if cid is not None:
            sample.contents.append(f"id:{cid}")
        else:
            sample.contents.append(f"text:{text}" if text and text.strip() else f"row:{row}")
    return sample


def measure_dataset(
    source: str | Path | Sequence[str | Path],
    embedder: Embedder,
    *,
    max_styles: int | None = 200,
    max_images_per_style: int = 8,
    batch_size: int = 32,
    max_pairs: int = 200_000,
    seed: int = 0,
) -> tuple[DatasetQuality, list[Reject]]:
    """Sample styles (seeded) from shards, embed their images and measure; bad images are skipped."""
    sample = sample_dataset(
        source, max_styles=max_styles, max_images_per_style=max_images_per_style, seed=seed
    )
    embeddings = np.asarray(embedder.embed_images(sample.images, batch_size=batch_size), dtype=np.float32)
    quality = dataset_quality(embeddings, sample.styles, sample.contents, max_pairs=max_pairs, seed=seed)
    return quality, sample.rejects
