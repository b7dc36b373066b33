"""Semantic dedup (SemDeDup): k-means on normalised embeddings, then within each cluster drop items whose
cosine to an already kept item is ≥ 1 − eps (NeMo-Curator's default eps = 0.01).

Inside a cluster, items are visited in keep-priority order and kept greedily: ``hard`` visits the
items farthest from the centroid first (SemDeDup keeps the least prototypical), ``easy`` the closest
first, ``random`` a seeded shuffle, ``first`` input order. k-means uses faiss when it is importable
(the ``search`` extra) and scikit-learn's MiniBatchKMeans otherwise; the two need not agree exactly.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
from typing import Literal

import numpy as np

from megastyle.curate.dedup.pairs import DuplicatePair, StepResult, result_from_pairs

SemanticKeep = Literal["hard", "easy", "random", "first"]
KMeansBackend = Literal["auto", "faiss", "sklearn"]

_BLOCK_ROWS = 1024  # similarity rows computed at once, so a huge cluster never needs m² memory


def normalize_rows(embeddings: np.ndarray) -> np.ndarray:
    """Float32 rows scaled to unit L2 norm (zero rows stay zero)."""
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D (n, d) array, got shape {x.shape}")
    if not np.isfinite(x).all():
        bad = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise ValueError(f"embedding {bad} has a NaN or infinite value")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def resolve_kmeans_backend(backend: KMeansBackend) -> Literal["faiss", "sklearn"]:
    """``auto`` → faiss when importable, else sklearn; ``faiss`` without faiss installed is an error."""
    has_faiss = importlib.util.find_spec("faiss") is not None
    if backend == "auto":
        return "faiss" if has_faiss else "sklearn"
    if backend == "faiss" and not has_faiss:
        raise ImportError("kmeans backend 'faiss' needs faiss-cpu (pip install 'megastyle[search]')")
    if backend not in ("faiss", "sklearn"):
        raise ValueError(f"unknown kmeans backend {backend!r}: use 'auto', 'faiss' or 'sklearn'")
    return backend


def kmeans(
    x: np.ndarray, n_clusters: int, *, seed: int = 0, iterations: int = 20, backend: KMeansBackend = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster the rows of ``x`` → (labels ``(n,)``, centroids ``(k, d)``), seeded."""
    n = len(x)
    k = max(1, min(n_clusters, n))
    if k == 1:
        return np.zeros(n, dtype=np.int64), x.mean(axis=0, keepdims=True)
    if resolve_kmeans_backend(backend) == "faiss":
        import faiss

        model = faiss.Kmeans(
            x.shape[1], k, niter=iterations, seed=seed, verbose=False, min_points_per_centroid=1
        )
        model.train(x)
        _, assigned = model.index.search(x, 1)
        return assigned[:, 0].astype(np.int64), np.asarray(model.centroids, dtype=np.float32)
    from sklearn.cluster import MiniBatchKMeans

    model = MiniBatchKMeans(
        n_clusters=k, random_state=seed, max_iter=iterations, n_init=3, batch_size=max(1024, 4 * k)
    )
    labels = model.fit_predict(x)
    return labels.astype(np.int64), model.cluster_centers_.astype(np.float32)


def _priority(
    members: np.ndarray, x: np.ndarray, centroid: np.ndarray, keep: SemanticKeep, rng: np.random.Generator
) -> np.ndarray:
    """``members`` reordered so the one to keep first comes first (ties broken by index)."""
    if keep == "first":
        return np.sort(members)
    if keep == "random":
        return rng.permutation(np.sort(members))
    norm = float(np.linalg.norm(centroid))
    similarity = x[members] @ (centroid / norm if norm > 0 else centroid)
    order = np.lexsort((members, similarity if keep == "hard" else -similarity))
    return members[order]


def _cluster_duplicates(x: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """Greedy pass over rows in order → (removed row, kept row, cosine) within one cluster."""
    m = len(x)
    # Every (row, earlier row) pair at ≥ threshold, found block by block: only these can remove a row.
    rows, cols, sims = [], [], []
    for start in range(1, m, _BLOCK_ROWS):
        stop = min(m, start + _BLOCK_ROWS)
        block = x[start:stop] @ x[:stop].T
        block[np.arange(stop)[None, :] >= np.arange(start, stop)[:, None]] = -np.inf  # earlier rows only
        r, c = np.nonzero(block >= threshold)
        rows.append(r + start)
        cols.append(c)
        sims.append(block[r, c])
    if not rows:
        return []
    row, col, sim = np.concatenate(rows), np.concatenate(cols), np.concatenate(sims)
    order = np.lexsort((col, row))  # by row, then earlier row: each row's neighbours are contiguous
    row, col, sim = row[order], col[order], sim[order]
    kept = np.ones(m, dtype=bool)
    out = []
    bounds = np.flatnonzero(np.r_[True, row[1:] != row[:-1], True])
    for lo, hi in itertools.pairwise(bounds):  # rows in order: a removal depends on earlier decisions only
        alive = kept[col[lo:hi]]
        if alive.any():
            best = lo + int(np.argmax(np.where(alive, sim[lo:hi], -np.inf)))
            kept[row[lo]] = False
            out.append((int(row[lo]), int(col[best]), float(sim[best])))
    return out


def auto_cluster_count(n: int, cluster_size: int) -> int:
    """Clusters for ``n`` items at about ``cluster_size`` items each (at least 1)."""
    return max(1, math.ceil(n / max(1, cluster_size)))


def semantic_duplicates(
    embeddings: np.ndarray,
    *,
    eps: float = 0.01,
    n_clusters: int | None = None,
    cluster_size: int = 1000,
    keep: SemanticKeep = "hard",
    seed: int = 0,
    kmeans_backend: KMeansBackend = "auto",
    kmeans_iterations: int = 20,
) -> StepResult:
    """SemDeDup over ``(n, d)`` embeddings → kept indices and (removed, kept, cosine) pairs."""
    if keep not in ("hard", "easy", "random", "first"):
        raise ValueError(f"unknown keep policy {keep!r}: use 'hard', 'easy', 'random' or 'first'")
    if not 0 <= eps < 2:
        raise ValueError(f"eps must be in [0, 2), got {eps}")
    x = normalize_rows(embeddings)
    n = len(x)
    if n == 0:
        return result_from_pairs(0, [])
    k = n_clusters if n_clusters is not None else auto_cluster_count(n, cluster_size)
    labels, centroids = kmeans(x, k, seed=seed, iterations=kmeans_iterations, backend=kmeans_backend)
    rng = np.random.default_rng(seed)
    pairs = []
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.r_[True, labels[order][1:] != labels[order][:-1], True])
    for lo, hi in itertools.pairwise(bounds):
        members = order[lo:hi]
        if len(members) < 2:
            continue
        ranked = _priority(members, x, centroids[labels[members[0]]], keep, rng)
        for removed, kept, cosine in _cluster_duplicates(x[ranked], 1.0 - eps):
            pairs.append(DuplicatePair(int(ranked[removed]), int(ranked[kept]), cosine))
    return result_from_pairs(n, pairs)
