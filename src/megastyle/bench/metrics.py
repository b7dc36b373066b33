"""Retrieval metrics: Recall@k and mAP@k as CSD defines them, standard mean average precision.

Definitions (a query's *relevant* items are gallery items with the query's style label):

- ``Recall@k`` (CSD): the share of queries with at least one relevant item in their top k.
- ``mAP@k`` (CSD): for each query, the mean of precision@i over i = 1..k, averaged over all
  queries. This is *not* standard average precision: it rewards relevant items anywhere in
  the top k, normalised by k, so ``mAP@1 == Recall@1``.
- ``mAP`` (standard): for each query, ``(1/R) · Σ precision@rank(r)`` over its R relevant
  items in the *full* ranking, averaged over queries.

Conventions: a query with no relevant item in the gallery ("no-hit") scores 0 on every
metric and still counts in the average. ``k`` larger than the (effective) gallery is clipped
to the gallery size; ``RetrievalScores.effective_k`` records what was used. Equal scores rank
by ascending gallery index (a stable order), so results never depend on sort internals.
When a query also sits in the gallery, pass ``exclude`` (its gallery index per query, -1 for
none): that item is never ranked, and when any query excludes an item the gallery counts
as one smaller for clipping k.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from megastyle.data.neighbours import (
    as_tensor,
    clip_k,
    exclude_array,
    mask_excluded,
    topk_search,
)


@dataclass
class RetrievalScores:
    """Metric values of one encoder on one query/gallery split."""

    recall: dict[int, float]  # requested k -> Recall@k
    map_at_k: dict[int, float]  # requested k -> CSD mAP@k
    mean_ap: float | None  # standard mAP over the full ranking (None when not computed)
    effective_k: dict[int, int]  # requested k -> k actually used (clipped to the gallery)
    num_queries: int
    gallery_size: int
    no_hit_queries: int  # queries with no relevant item in the gallery (self excluded)
    per_query_ap: np.ndarray | None = field(default=None, repr=False)
    # Each query's value of every metric, keyed as in ``as_dict`` ("recall@1", "map@10", "mAP"): what
    # paired comparisons between encoders resample.
    per_query: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, float | int | None]:
        """Flat ``{"recall@1": …, "map@1": …, "mAP": …}`` plus counts, for tables and JSON."""
        out: dict[str, float | int | None] = {}
        for k in self.recall:
            out[f"recall@{k}"] = self.recall[k]
        for k in self.map_at_k:
            out[f"map@{k}"] = self.map_at_k[k]
        out["mAP"] = self.mean_ap
        out["queries"] = self.num_queries
        out["gallery"] = self.gallery_size
        out["no_hit_queries"] = self.no_hit_queries
        return out


# -- ranking ---------------------------------------------------------------------------------
# -- metrics on relevance matrices ------------------------------------------------------------
def relevance_matrix(
    indices: np.ndarray,
    query_labels: Sequence[object] | np.ndarray,
    gallery_labels: Sequence[object] | np.ndarray,
) -> np.ndarray:
    """Boolean (queries × ranks): is the gallery item at each rank of the query's label?"""
    q_labels = np.asarray(query_labels)
    g_labels = np.asarray(gallery_labels)
    indices = np.asarray(indices, dtype=np.int64)
    if len(q_labels) != indices.shape[0]:
        raise ValueError(f"{len(q_labels)} query labels for {indices.shape[0]} rankings")
    return g_labels[indices] == q_labels[:, None]


def _relevance(relevance: np.ndarray, k: int) -> np.ndarray:
    rel = np.asarray(relevance, dtype=bool)
    if rel.ndim != 2:
        raise ValueError(f"relevance must be 2-D (queries × ranks), got shape {rel.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return rel[:, : min(k, rel.shape[1])]


def query_recall_at_k(relevance: np.ndarray, k: int) -> np.ndarray:
    """Per query: 1.0 when a relevant item is in the top k (k clipped to the ranking), else 0.0."""
    return _relevance(relevance, k).any(axis=1).astype(np.float64)


def recall_at_k(relevance: np.ndarray, k: int) -> float:
    """CSD Recall@k: share of queries with >= 1 relevant item in the top k (k clipped to the ranking)."""
    hits = query_recall_at_k(relevance, k)
    return float(hits.mean()) if len(hits) else 0.0


def query_map_at_k(relevance: np.ndarray, k: int) -> np.ndarray:
    """Per query: the mean of precision@i for i = 1..k (CSD's mAP@k before averaging over queries)."""
    rel = _relevance(relevance, k)
    ranks = np.arange(1, rel.shape[1] + 1)
    return (np.cumsum(rel, axis=1) / ranks).mean(axis=1) if rel.shape[1] else np.zeros(len(rel))


def map_at_k(relevance: np.ndarray, k: int) -> float:
    """CSD mAP@k: per query the mean of precision@i for i = 1..k, averaged over queries."""
    values = query_map_at_k(relevance, k)
    return float(values.mean()) if len(values) else 0.0


def average_precision(relevance_full: np.ndarray) -> np.ndarray:
    """Standard AP per query from relevance over each query's *full* ranking (no-hit rows → 0)."""
    rel = np.asarray(relevance_full, dtype=bool)
    if rel.ndim != 2:
        raise ValueError(f"relevance must be 2-D (queries × ranks), got shape {rel.shape}")
    # Only hits matter: the j-th hit of a row at 0-based position p adds precision j / (p + 1).
    rows, positions = np.nonzero(rel)
    counts = rel.sum(axis=1)
    first = np.cumsum(counts) - counts
    nth_hit = np.arange(len(rows)) - np.repeat(first, counts) + 1
    summed = np.bincount(rows, weights=nth_hit / (positions + 1), minlength=len(rel))
    return np.divide(summed, counts, out=np.zeros(len(rel)), where=counts > 0)


def mean_average_precision(relevance_full: np.ndarray) -> float:
    """Standard mAP: mean of ``average_precision`` over all queries, no-hit queries as 0."""
    ap = average_precision(relevance_full)
    return float(ap.mean()) if len(ap) else 0.0


def full_ranking_average_precision(
    queries: np.ndarray | torch.Tensor,
    gallery: np.ndarray | torch.Tensor,
    query_labels: Sequence[object] | np.ndarray,
    gallery_labels: Sequence[object] | np.ndarray,
    *,
    exclude: Sequence[int] | np.ndarray | None = None,
    max_block: int = 16_000_000,
) -> np.ndarray:
    """Standard AP per query over the whole gallery, sorting blocks of queries (≤ ``max_block`` cells)."""
    q = as_tensor(queries, "queries")
    g = as_tensor(gallery, "gallery")
    ex = exclude_array(exclude, q.shape[0])
    q_labels, g_labels = np.asarray(query_labels), np.asarray(gallery_labels)
    chunk = max(1, max_block // max(1, g.shape[0]))
    out = np.empty(q.shape[0], dtype=np.float64)
    for q0 in range(0, q.shape[0], chunk):
        sims = q[q0 : q0 + chunk] @ g.T
        mask_excluded(sims, ex, q0, 0)
        order = torch.sort(sims, dim=1, descending=True, stable=True).indices.numpy()
        rel = g_labels[order] == q_labels[q0 : q0 + chunk, None]
        if ex is not None:  # the excluded item sorts last (-inf); it is never a hit
            for row, gi in enumerate(ex[q0 : q0 + chunk]):
                if gi >= 0:
                    rel[row, -1] = False
        out[q0 : q0 + chunk] = average_precision(rel)
    return out


def evaluate_embeddings(
    queries: np.ndarray | torch.Tensor,
    gallery: np.ndarray | torch.Tensor,
    query_labels: Sequence[object] | np.ndarray,
    gallery_labels: Sequence[object] | np.ndarray,
    ks: Sequence[int] = (1, 10, 100),
    *,
    exclude: Sequence[int] | np.ndarray | None = None,
    standard_map: bool = True,
) -> RetrievalScores:
    """Recall@k, CSD mAP@k and (optionally) standard mAP of L2-normalised embeddings by cosine."""
    q_labels, g_labels = np.asarray(query_labels), np.asarray(gallery_labels)
    n_q, n_g = len(q_labels), len(g_labels)
    if n_q != np.shape(queries)[0] or n_g != np.shape(gallery)[0]:
        raise ValueError(
            f"labels ({n_q} queries, {n_g} gallery) do not match embeddings "
            f"({np.shape(queries)[0]}, {np.shape(gallery)[0]})"
        )
    if not ks:
        raise ValueError("ks must name at least one k")
    ex = exclude_array(exclude, n_q)
    effective = {int(k): clip_k(int(k), n_g, ex) for k in ks}
    top = topk_search(queries, gallery, max(effective.values()), exclude=ex)
    rel = relevance_matrix(top.indices, q_labels, g_labels)
    labels, counts = np.unique(g_labels, return_counts=True)
    relevant = dict(zip(labels.tolist(), counts.tolist(), strict=True))
    num_relevant = np.array([relevant.get(label, 0) for label in q_labels.tolist()], dtype=np.int64)
    if ex is not None:  # an excluded self-match is not a retrievable relevant item
        own = (ex >= 0) & (g_labels[np.clip(ex, 0, None)] == q_labels)
        num_relevant -= own.astype(np.int64)
    per_query_ap = (
        full_ranking_average_precision(queries, gallery, q_labels, g_labels, exclude=ex)
        if standard_map
        else None
    )
    per_query = {f"recall@{k}": query_recall_at_k(rel, e) for k, e in effective.items()}
    per_query |= {f"map@{k}": query_map_at_k(rel, e) for k, e in effective.items()}
    if per_query_ap is not None:
        per_query["mAP"] = per_query_ap
    return RetrievalScores(
        recall={k: float(per_query[f"recall@{k}"].mean()) if n_q else 0.0 for k in effective},
        map_at_k={k: float(per_query[f"map@{k}"].mean()) if n_q else 0.0 for k in effective},
        mean_ap=float(per_query_ap.mean()) if per_query_ap is not None and n_q else None,
        effective_k=effective,
        num_queries=n_q,
        gallery_size=n_g,
        no_hit_queries=int((num_relevant == 0).sum()),
        per_query_ap=per_query_ap,
        per_query=per_query,
    )
