"""Exact nearest neighbours by inner product over embedding matrices: the top-k of every query.

Shared by search (``encode.search``) and the retrieval metrics (``bench.metrics``). Equal scores
rank by ascending gallery index (a stable order), so results never depend on sort internals.
When a query also sits in the gallery, ``exclude`` gives its gallery index per query (-1 for none):
that item is never ranked, and the gallery counts as one smaller for clipping k.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

TIE_RULE = "equal scores rank by ascending gallery index"


@dataclass(frozen=True)
class TopK:
    """The best ``k`` gallery items per query: scores descending, ties by gallery index."""

    scores: np.ndarray  # (n_queries, k) float32
    indices: np.ndarray  # (n_queries, k) int64 gallery positions


def as_tensor(array: np.ndarray | torch.Tensor, name: str) -> torch.Tensor:
    """``array`` as a finite float32 (rows × dim) tensor; the error names ``name`` and the bad row."""
    tensor = torch.as_tensor(np.asarray(array, dtype=np.float32) if not torch.is_tensor(array) else array)
    tensor = tensor.to(torch.float32)
    if tensor.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows × dim), got shape {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        bad = int((~torch.isfinite(tensor)).any(dim=1).nonzero()[0, 0])
        raise ValueError(f"{name} row {bad} holds NaN or inf")
    return tensor


def exclude_array(exclude: Sequence[int] | np.ndarray | None, n_queries: int) -> np.ndarray | None:
    """``exclude`` as one int64 gallery index per query (-1: none), or None."""
    if exclude is None:
        return None
    array = np.asarray(exclude, dtype=np.int64).reshape(-1)
    if len(array) != n_queries:
        raise ValueError(f"exclude has {len(array)} entries for {n_queries} queries")
    return array


def clip_k(k: int, gallery_size: int, exclude: np.ndarray | None) -> int:
    """``k`` clipped to the gallery (one smaller when any query excludes an item)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    effective = gallery_size - (1 if exclude is not None and (exclude >= 0).any() else 0)
    if effective < 1:
        raise ValueError(f"gallery of {gallery_size} leaves nothing to rank")
    return min(k, effective)


def mask_excluded(sims: torch.Tensor, exclude: np.ndarray | None, q0: int, g0: int) -> None:
    """Set the excluded (query, gallery) cells of block ``sims`` (rows q0.., cols g0..) to -inf."""
    if exclude is None:
        return
    local = exclude[q0 : q0 + sims.shape[0]] - g0
    rows = np.nonzero((local >= 0) & (local < sims.shape[1]))[0]
    if len(rows):
        sims[torch.as_tensor(rows), torch.as_tensor(local[rows])] = float("-inf")


def ordered_topk(sims: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of each row in (score desc, column asc) order; ``torch.topk`` alone breaks ties arbitrarily."""
    values, indices = torch.topk(sims, k, dim=1)
    # Rows where an item tied with the k-th score was left out: redo those by a stable sort.
    spill = (sims >= values[:, -1:]).sum(dim=1) > k
    if spill.any():
        rows = spill.nonzero().squeeze(1)
        full = torch.sort(sims[rows], dim=1, descending=True, stable=True)
        values[rows], indices[rows] = full.values[:, :k], full.indices[:, :k]
    by_index = torch.argsort(indices, dim=1)
    values, indices = values.gather(1, by_index), indices.gather(1, by_index)
    by_score = torch.sort(values, dim=1, descending=True, stable=True).indices
    return values.gather(1, by_score), indices.gather(1, by_score)


def topk_from_similarity(
    similarity: np.ndarray | torch.Tensor, k: int, *, exclude: Sequence[int] | np.ndarray | None = None
) -> TopK:
    """Top-k per row of a precomputed (queries × gallery) similarity matrix."""
    sims = as_tensor(similarity, "similarity").clone()
    ex = exclude_array(exclude, sims.shape[0])
    k = clip_k(k, sims.shape[1], ex)
    mask_excluded(sims, ex, 0, 0)
    values, indices = ordered_topk(sims, k)
    return TopK(values.numpy(), indices.numpy().astype(np.int64))


def topk_search(
    queries: np.ndarray | torch.Tensor,
    gallery: np.ndarray | torch.Tensor,
    k: int,
    *,
    exclude: Sequence[int] | np.ndarray | None = None,
    query_chunk: int = 256,
    gallery_chunk: int = 65_536,
) -> TopK:
    """Exact top-k by inner product, chunked over queries and gallery so memory stays one block."""
    q = as_tensor(queries, "queries")
    g = as_tensor(gallery, "gallery")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"queries have dim {q.shape[1]}, gallery dim {g.shape[1]}")
    ex = exclude_array(exclude, q.shape[0])
    k = clip_k(k, g.shape[0], ex)
    out_scores = np.empty((q.shape[0], k), dtype=np.float32)
    out_indices = np.empty((q.shape[0], k), dtype=np.int64)
    for q0 in range(0, q.shape[0], query_chunk):
        best_v: torch.Tensor | None = None
        best_i: torch.Tensor | None = None
        for g0 in range(0, g.shape[0], gallery_chunk):
            sims = q[q0 : q0 + query_chunk] @ g[g0 : g0 + gallery_chunk].T
            mask_excluded(sims, ex, q0, g0)
            values, indices = ordered_topk(sims, min(k, sims.shape[1]))
            indices = indices + g0
            if best_v is None or best_i is None:
                best_v, best_i = values, indices
                continue
            # Earlier blocks hold smaller indices, so a stable merge keeps the tie rule.
            values, indices = torch.cat([best_v, values], 1), torch.cat([best_i, indices], 1)
            order = torch.sort(values, dim=1, descending=True, stable=True).indices[:, :k]
            best_v, best_i = values.gather(1, order), indices.gather(1, order)
        assert best_v is not None and best_i is not None
        out_scores[q0 : q0 + query_chunk] = best_v.numpy()
        out_indices[q0 : q0 + query_chunk] = best_i.numpy()
    return TopK(out_scores, out_indices)
