"""Memory-bounded k-means in torch: Lloyd iterations over row chunks, seeded init, spherical option.

Distances are computed chunk by chunk against all centroids, so peak extra memory is
``chunk_size × k`` scores instead of ``n × k``; the same code runs on a GPU by passing ``device``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

InitMethod = Literal["auto", "kmeans++", "random"]

# Scores buffer budget when no chunk size is given (float32 chunk × k matrix).
_SCORE_BUDGET_BYTES = 256 * 2**20
# Above this k, "auto" init falls back to random: k-means++ costs k sequential passes.
_AUTO_KMEANSPP_MAX_K = 1024
# k-means++ runs on at most this many points per centroid (a uniform subsample), like faiss does.
_INIT_POINTS_PER_CENTROID = 256


@dataclass
class KMeansResult:
    """Fitted centroids, the cluster of every point and the fit's cost."""

    centroids: np.ndarray  # (k, d) float32; unit rows when spherical
    assignments: np.ndarray  # (n,) int64 cluster of every point
    distances: np.ndarray  # (n,) float32 squared Euclidean distance of every point to its centroid
    inertia: float  # sum of ``distances``
    iterations: int  # Lloyd iterations run

    @property
    def k(self) -> int:
        """Number of centroids."""
        return int(self.centroids.shape[0])

    def cluster_sizes(self) -> np.ndarray:
        """Number of points in every cluster (zeros included)."""
        return np.bincount(self.assignments, minlength=self.k)


def as_tensor(x: np.ndarray | torch.Tensor, device: str | torch.device, spherical: bool) -> torch.Tensor:
    """``x`` as a float32 2-D tensor on ``device``; L2-normalised rows when ``spherical``."""
    if isinstance(x, np.ndarray) and not x.flags.writeable:
        x = x.copy()  # arrays from a shared object store are read-only; torch wants to own writable memory
    t = torch.as_tensor(x, device=device)
    if t.ndim != 2:
        raise ValueError(f"k-means input must be 2-D (points × dims), got shape {tuple(t.shape)}")
    if not t.is_floating_point() or t.dtype != torch.float32:
        t = t.float()
    # One pass of row norms serves both checks: a NaN/inf anywhere in a row makes its norm non-finite.
    norms = torch.linalg.vector_norm(t, dim=1, keepdim=True)
    if not bool(torch.isfinite(norms).all()):
        bad = int((~torch.isfinite(norms[:, 0])).nonzero()[0, 0])
        raise ValueError(f"k-means input row {bad} holds NaN, infinite or overflowing values")
    if spherical:
        if bool((norms == 0).any()):
            bad = int((norms[:, 0] == 0).nonzero()[0, 0])
            raise ValueError(f"k-means input row {bad} is all zeros: it has no direction (spherical mode)")
        # Skip the copy when the caller already normalised (the usual case for sentence embeddings).
        if not bool(((norms - 1.0).abs() <= 1e-4).all()):
            t = t / norms
    return t


def auto_chunk_size(k: int) -> int:
    """Rows per distance chunk so that the ``rows × k`` float32 score matrix stays near 256 MiB."""
    return int(max(256, min(65536, _SCORE_BUDGET_BYTES // (4 * max(k, 1)))))


def _scores(chunk: torch.Tensor, centroids: torch.Tensor, half_sq_norms: torch.Tensor | None) -> torch.Tensor:
    # argmax of x·c − ||c||²/2 equals argmin of ||x − c||²; the ||x||² term is constant per row.
    scores = chunk @ centroids.T
    if half_sq_norms is not None:
        scores -= half_sq_norms
    return scores


def assign(
    x: torch.Tensor, centroids: torch.Tensor, spherical: bool, chunk_size: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest centroid and squared Euclidean distance of every row of ``x``, chunk by chunk."""
    chunk_size = chunk_size or auto_chunk_size(centroids.shape[0])
    half = None if spherical else 0.5 * (centroids * centroids).sum(dim=1)
    labels = torch.empty(x.shape[0], dtype=torch.int64, device=x.device)
    dists = torch.empty(x.shape[0], dtype=torch.float32, device=x.device)
    for start in range(0, x.shape[0], chunk_size):
        chunk = x[start : start + chunk_size]
        # max() returns values and indices in one pass (argmax alone is slower on CPU).
        best, idx = _scores(chunk, centroids, half).max(dim=1)
        labels[start : start + chunk_size] = idx
        sq = (chunk * chunk).sum(dim=1)
        dists[start : start + chunk_size] = (
            (sq - 2.0 * best).clamp_min_(0.0)
            if half is not None
            else ((sq + 1.0 - 2.0 * best).clamp_min_(0.0))
        )
    return labels, dists


def _kmeanspp(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """Greedy k-means++ seeding (2 + ln k candidates per step, keep the one lowering the cost most)."""
    n = x.shape[0]
    trials = 2 + int(math.log(k))
    sq = (x * x).sum(dim=1)
    first = int(torch.randint(n, (1,), generator=generator, device=x.device))
    centers = [first]
    closest = (sq - 2.0 * (x @ x[first]) + sq[first]).clamp_min_(0.0)
    for _ in range(1, k):
        total = closest.sum()
        if float(total) <= 0.0:  # every point already sits on a centre: pad with unused points
            unused = torch.ones(n, dtype=torch.bool, device=x.device)
            unused[torch.tensor(centers, device=x.device)] = False
            pool = unused.nonzero()[:, 0]
            cand = pool[torch.randperm(pool.numel(), generator=generator, device=x.device)[:1]]
        else:
            cand = torch.multinomial(closest / total, trials, replacement=True, generator=generator)
        cand_d = (sq[None, :] - 2.0 * (x[cand] @ x.T) + sq[cand][:, None]).clamp_min_(0.0)
        cand_closest = torch.minimum(closest[None, :], cand_d)
        best = int(cand_closest.sum(dim=1).argmin())
        centers.append(int(cand[best]))
        closest = cand_closest[best]
    return x[torch.tensor(centers, device=x.device)].clone()


def init_centroids(x: torch.Tensor, k: int, method: InitMethod, generator: torch.Generator) -> torch.Tensor:
    """Seeded initial centroids: k distinct random points, or k-means++ on a bounded subsample."""
    n = x.shape[0]
    if method == "auto":
        method = "kmeans++" if k <= _AUTO_KMEANSPP_MAX_K else "random"
    if method == "random":
        return x[torch.randperm(n, generator=generator, device=x.device)[:k]].clone()
    if method != "kmeans++":
        raise ValueError(f"unknown k-means init {method!r}: use 'auto', 'kmeans++' or 'random'")
    cap = k * _INIT_POINTS_PER_CENTROID
    sample = x if n <= cap else x[torch.randperm(n, generator=generator, device=x.device)[:cap]]
    return _kmeanspp(sample, k, generator)


def _update(
    x: torch.Tensor, labels: torch.Tensor, dists: torch.Tensor, k: int, spherical: bool
) -> torch.Tensor:
    """New centroids = cluster means; an empty cluster restarts at one of the worst-fitted points."""
    d = x.shape[1]
    sums = torch.zeros(k, d, dtype=torch.float32, device=x.device).index_add_(0, labels, x)
    counts = torch.bincount(labels, minlength=k)
    empty = (counts == 0).nonzero()[:, 0]
    new = sums / counts.clamp_min(1).unsqueeze(1).to(sums.dtype)
    if empty.numel():
        # Relocate empties to the points farthest from their centroid (distinct points), as sklearn does.
        far = torch.topk(dists, min(empty.numel(), dists.numel())).indices
        new[empty[: far.numel()]] = x[far]
    if spherical:
        new = torch.nn.functional.normalize(new, dim=1)
    return new


def _mean_variance(x: torch.Tensor, generator: torch.Generator, max_rows: int = 65536) -> float:
    """Mean per-dimension variance, estimated on a seeded subsample (a full pass costs a Lloyd step)."""
    if x.shape[0] > max_rows:
        x = x[torch.randperm(x.shape[0], generator=generator, device=x.device)[:max_rows]]
    return float(x.var(dim=0).mean())


def kmeans(
    x: np.ndarray | torch.Tensor,
    k: int,
    iters: int = 20,
    seed: int = 0,
    spherical: bool = True,
    chunk_size: int | None = None,
    device: str | torch.device = "cpu",
    init: InitMethod = "auto",
    initial_centroids: np.ndarray | torch.Tensor | None = None,
    tol: float = 1e-4,
) -> KMeansResult:
    """Lloyd's k-means of the rows of ``x`` into ``k`` clusters (cosine on unit rows when ``spherical``)."""
    points = as_tensor(x, device, spherical)
    n = points.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k-means needs 1 <= k <= number of points, got k={k} for {n} points")
    if iters < 0:
        raise ValueError(f"iters must be >= 0, got {iters}")
    generator = torch.Generator(device=points.device).manual_seed(seed)
    if initial_centroids is not None:
        centroids = as_tensor(initial_centroids, points.device, spherical).clone()
        if centroids.shape != (k, points.shape[1]):
            raise ValueError(
                f"initial centroids have shape {tuple(centroids.shape)}, expected {(k, points.shape[1])}"
            )
    else:
        centroids = init_centroids(points, k, init, generator)
    # Stop when the total squared centroid shift is small against the data's spread (sklearn's rule).
    threshold = tol * _mean_variance(points, generator) if n > 1 else 0.0
    done = 0
    while done < iters:
        labels, dists = assign(points, centroids, spherical, chunk_size)
        new = _update(points, labels, dists, k, spherical)
        shift = float(((new - centroids) ** 2).sum())
        centroids = new
        done += 1
        if shift <= threshold:
            break
    labels, dists = assign(points, centroids, spherical, chunk_size)
    return KMeansResult(
        centroids=centroids.cpu().numpy(),
        assignments=labels.cpu().numpy(),
        distances=dists.cpu().numpy(),
        inertia=float(dists.sum(dtype=torch.float64)),
        iterations=done,
    )
