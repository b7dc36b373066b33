"""Fuzzy dedup: MinHash signatures → LSH band buckets → (optionally Jaccard-verified) edges → components.

NeMo-Curator's defaults: character 24-grams, 20 bands × 13 rows (the LSH S-curve crosses 0.5 near
Jaccard (1/20)^(1/13) ≈ 0.79). Components come from a vectorised union-find (hook every edge to the
smaller label, then pointer-jump until nothing changes), so each component's label is its smallest
index. One member per component is kept; the others are reported as (removed, kept, Jaccard).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from megastyle.curate.dedup.minhash import MinHasher
from megastyle.curate.dedup.pairs import DuplicatePair, StepResult
from megastyle.curate.dedup.shingles import ShingleUnit, jaccard, shingle_sets

FuzzyKeep = Literal["first", "longest"]

__all__ = [
    "ESTIMATE_MARGIN",
    "FuzzyEdges",
    "MinHasher",
    "connected_components",
    "fuzzy_duplicates",
    "fuzzy_edges",
    "lsh_candidate_pairs",
    "minhash_jaccard",
    "shingle_sets_by_index",
    "verify_pairs",
]

_U64 = np.uint64
_BAND_SALT = 0xA0761D6478BD642F


def _band_keys(band: np.ndarray) -> np.ndarray:
    """One 64-bit key per row of a ``(n, rows)`` band (a multiply–xor chain over its values)."""
    key = np.full(len(band), _BAND_SALT, dtype=_U64)
    for col in range(band.shape[1]):
        key *= _U64(0x9E3779B97F4A7C15)
        key ^= band[:, col]
        key ^= key >> _U64(29)
    return key


def _pairs_in_runs(
    order: np.ndarray, run_starts: np.ndarray, run_lengths: np.ndarray, limit: int
) -> np.ndarray:
    """(i, j) pairs of the members ``order[start:start+length]`` of each run (all pairs up to ``limit``).

    A run longer than ``limit`` contributes a star instead (every member paired with its first
    member): the same connected component with linear, not quadratic, edges.
    """
    out = []
    small = run_lengths <= limit
    starts, lengths = run_starts[small], run_lengths[small]
    for offset in range(1, int(lengths.max(initial=1))):
        has = lengths > offset
        starts, lengths = starts[has], lengths[has]
        # Every position p of a run with p + offset still inside the run.
        counts = lengths - offset
        base = np.repeat(starts, counts) + (
            np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        )
        out.append(np.stack([order[base], order[base + offset]], axis=1))
    for start, length in zip(run_starts[~small], run_lengths[~small], strict=True):
        members = order[start : start + length]
        out.append(np.stack([np.full(length - 1, members[0]), members[1:]], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)


def lsh_candidate_pairs(
    signatures: np.ndarray, bands: int, rows: int, max_bucket_size: int = 100
) -> np.ndarray:
    """Distinct ``(i, j)`` pairs (i < j, sorted) that share all ``rows`` values of at least one band."""
    n, num_perm = signatures.shape
    if bands * rows > num_perm:
        raise ValueError(
            f"{bands} bands × {rows} rows need {bands * rows} permutations, signatures have {num_perm}"
        )
    found = []
    for band in range(bands):
        values = signatures[:, band * rows : (band + 1) * rows]
        keys = _band_keys(values)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        boundaries = np.flatnonzero(np.diff(sorted_keys)) + 1
        run_starts = np.concatenate([[0], boundaries])
        run_lengths = np.diff(np.append(run_starts, n))
        multi = run_lengths > 1
        pairs = _pairs_in_runs(order, run_starts[multi], run_lengths[multi], max_bucket_size)
        if len(pairs):
            # A 64-bit key collision is astronomically rare; check the band values to stay exact.
            same = (values[pairs[:, 0]] == values[pairs[:, 1]]).all(axis=1)
            found.append(pairs[same])
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.sort(np.concatenate(found), axis=1).astype(np.int64)
    codes = np.unique(pairs[:, 0] * n + pairs[:, 1])
    return np.stack([codes // n, codes % n], axis=1)


def connected_components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Union-find over ``n`` nodes and ``(m, 2)`` edges → each node's label, the smallest index of its component."""
    labels = np.arange(n, dtype=np.int64)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if len(pairs) == 0:
        return labels
    left, right = pairs[:, 0], pairs[:, 1]
    while True:
        # Hook: each endpoint's root takes the smaller of the two roots (min is order-independent).
        low = np.minimum(labels[left], labels[right])
        previous = labels.copy()
        np.minimum.at(labels, labels[left], low)
        np.minimum.at(labels, labels[right], low)
        # Compress: jump every node to its root's root until the forest is flat.
        while True:
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
        if np.array_equal(labels, previous) and np.array_equal(labels[left], labels[right]):
            return labels


def minhash_jaccard(signatures: np.ndarray, pairs: np.ndarray, chunk: int = 16384) -> np.ndarray:
    """The MinHash Jaccard estimate (share of equal signature values) of each pair."""
    out = np.zeros(len(pairs))
    for start in range(0, len(pairs), chunk):  # chunks: two gathered signature rows per pair add up
        part = pairs[start : start + chunk]
        out[start : start + len(part)] = (signatures[part[:, 0]] == signatures[part[:, 1]]).mean(axis=1)
    return out


def verify_pairs(sets: dict[int, np.ndarray], pairs: np.ndarray) -> np.ndarray:
    """Exact Jaccard of each pair's shingle sets (``sets`` maps an index to its sorted distinct hashes)."""
    return np.array([jaccard(sets[int(i)], sets[int(j)]) for i, j in pairs], dtype=np.float64)


# A candidate whose MinHash estimate is this far below the threshold is dropped without the exact
# check: at 260 permutations the estimate's standard deviation is ≤ 0.031, so 0.15 is ≥ 5 of them.
ESTIMATE_MARGIN = 0.15


@dataclass
class FuzzyEdges:
    """The fuzzy step before the keep rule: signatures, (verified) edges and the shingle sets it read."""

    signatures: np.ndarray
    edges: np.ndarray
    sets: dict[int, np.ndarray]
    hasher: MinHasher


def fuzzy_edges(
    texts: Sequence[str],
    *,
    bands: int = 20,
    rows: int = 13,
    ngram: int = 24,
    unit: ShingleUnit = "char",
    seed: int = 0,
    normalize: bool = True,
    verify: bool = True,
    threshold: float = 0.8,
    max_bucket_size: int = 100,
    batch_size: int = 32768,
    hasher: MinHasher | None = None,
) -> FuzzyEdges:
    """MinHash → LSH candidates → (with ``verify``) only pairs whose exact Jaccard ≥ ``threshold``."""
    hasher = hasher or MinHasher(bands * rows, ngram, unit, seed, normalize, batch_size)
    signatures = hasher.signatures(texts)
    candidates = lsh_candidate_pairs(signatures, bands, rows, max_bucket_size)
    sets: dict[int, np.ndarray] = {}
    if verify and len(candidates):
        candidates = candidates[minhash_jaccard(signatures, candidates) >= threshold - ESTIMATE_MARGIN]
        sets = shingle_sets_by_index(texts, np.unique(candidates), hasher)
        candidates = candidates[verify_pairs(sets, candidates) >= threshold]
    return FuzzyEdges(signatures, candidates, sets, hasher)


def fuzzy_duplicates(
    texts: Sequence[str],
    *,
    bands: int = 20,
    rows: int = 13,
    ngram: int = 24,
    unit: ShingleUnit = "char",
    seed: int = 0,
    normalize: bool = True,
    verify: bool = True,
    threshold: float = 0.8,
    keep: FuzzyKeep = "first",
    max_bucket_size: int = 100,
    batch_size: int = 32768,
    hasher: MinHasher | None = None,
) -> StepResult:
    """Near-duplicate removal over the whole list: one member kept per connected component of ``fuzzy_edges``."""
    if keep not in ("first", "longest"):
        raise ValueError(f"unknown keep policy {keep!r}: use 'first' or 'longest'")
    found = fuzzy_edges(
        texts,
        bands=bands,
        rows=rows,
        ngram=ngram,
        unit=unit,
        seed=seed,
        normalize=normalize,
        verify=verify,
        threshold=threshold,
        max_bucket_size=max_bucket_size,
        batch_size=batch_size,
        hasher=hasher,
    )
    n = len(texts)
    kept_of = _choose_kept(connected_components(n, found.edges), texts, keep)
    removed = np.flatnonzero(kept_of != np.arange(n))
    pairs = np.stack([removed, kept_of[removed]], axis=1)
    if verify:  # a removed item may join its kept one only through others: report their own Jaccard
        missing = np.setdiff1d(
            np.unique(pairs), np.fromiter(found.sets, dtype=np.int64, count=len(found.sets))
        )
        scores = verify_pairs(found.sets | shingle_sets_by_index(texts, missing, found.hasher), pairs)
    else:
        scores = minhash_jaccard(found.signatures, pairs)
    return StepResult(
        n=n,
        kept=np.flatnonzero(kept_of == np.arange(n)),
        pairs=[DuplicatePair(int(r), int(k), float(s)) for (r, k), s in zip(pairs, scores, strict=True)],
    )


def shingle_sets_by_index(
    texts: Sequence[str], indices: np.ndarray, hasher: MinHasher
) -> dict[int, np.ndarray]:
    """``{index: sorted distinct shingle hashes}`` for the chosen texts, shingled as ``hasher`` does."""
    chosen = [texts[int(i)] for i in indices]
    found = shingle_sets(chosen, hasher.ngram, hasher.unit, hasher.normalize)
    return {int(i): s for i, s in zip(indices, found, strict=True)}


def _choose_kept(labels: np.ndarray, texts: Sequence[str], keep: FuzzyKeep) -> np.ndarray:
    """For each index, the index kept for its component."""
    if keep == "first":
        return labels  # the label is already the smallest index
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    order = np.lexsort((np.arange(len(texts)), -lengths, labels))  # by component, longest, first
    sorted_labels = labels[order]
    heads = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    winner = np.empty(len(texts), dtype=np.int64)
    winner[labels[order[heads]]] = order[heads]
    return winner[labels]
