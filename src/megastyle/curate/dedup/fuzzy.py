"""Fuzzy dedup: MinHash signatures → LSH band buckets → (optionally Jaccard-verified) edges → components.

NeMo-Curator's defaults: character 24-grams, 20 bands × 13 rows (the LSH S-curve crosses 0.5 near
Jaccard (1/20)^(1/13) ≈ 0.79). Every stage is array code with no Python loop over documents or
pairs: band keys are one multiply-sum per band, buckets come from sorting them; candidates whose
MinHash estimate is far below the threshold are dropped, the rest get their exact Jaccard from one
packed sort-and-search over all pairs' shingle sets. Components come from a vectorised union-find
(hook every edge to the smaller label, then pointer-jump until nothing changes), so each
component's label is its smallest index. One member per component is kept; the others are reported
as (removed, kept, Jaccard).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from megastyle.curate.dedup.minhash import MinHasher
from megastyle.curate.dedup.pairs import DuplicatePair, StepResult
from megastyle.curate.dedup.shingles import (
    ShingleUnit,
    pair_jaccard,
    shingle_set_ranks,
    sorted_unique,
    split_at_offsets,
    unique_inverse,
)

FuzzyKeep = Literal["first", "longest"]

__all__ = [
    "ESTIMATE_MARGIN",
    "FuzzyEdges",
    "MinHasher",
    "ShingleSetTable",
    "connected_components",
    "fuzzy_duplicates",
    "fuzzy_edges",
    "lsh_candidate_pairs",
    "minhash_jaccard",
    "verify_candidates",
    "verify_pairs",
]

_U64 = np.uint64
_BAND_KEY_SEED = 0xA0761D6478BD642F
_KEY_ROWS = 2048  # signature rows turned into band keys at once (a few MB of uint64)


def _band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """``(bands, n)`` uint64 keys: ``sum_j v_j · K_j mod 2^64`` over each band's values (random odd ``K_j``).

    Equal bands get equal keys; unequal ones collide with probability ~2^-64 and are caught by the
    exact band comparison in ``lsh_candidate_pairs``. One row-major pass reads the signatures once.
    """
    multipliers = np.random.default_rng(_BAND_KEY_SEED).integers(0, 1 << 63, rows, dtype=_U64)
    multipliers = multipliers * _U64(2) + _U64(1)  # odd
    n = len(signatures)
    keys = np.empty((bands, n), dtype=_U64)
    for start in range(0, n, _KEY_ROWS):
        block = signatures[start : start + _KEY_ROWS, : bands * rows].astype(_U64).reshape(-1, bands, rows)
        keys[:, start : start + len(block)] = np.einsum("nbr,r->bn", block, multipliers)  # wraps mod 2^64
    return keys


def _bucket_order(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order, run starts, run lengths) of the keys' equal runs longer than 1, members in index order."""
    order = np.argsort(keys)  # unstable (fast); multi-member runs are put in index order below
    ordered = keys[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    lengths = np.diff(np.append(starts, len(keys)))
    multi = lengths > 1
    starts, lengths = starts[multi], lengths[multi]
    if len(starts):
        positions = np.repeat(starts, lengths) + (
            np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        )
        run = np.repeat(np.arange(len(starts)), lengths)
        members = order[positions]
        order[positions] = members[np.lexsort((members, run))]
    return order, starts, lengths


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
    keys = _band_keys(signatures, bands, rows)
    for band in range(bands):
        order, run_starts, run_lengths = _bucket_order(keys[band])
        pairs = _pairs_in_runs(order, run_starts, run_lengths, max_bucket_size)
        if len(pairs):
            # A key collision is astronomically rare; compare the band values to stay exact.
            values = signatures[:, band * rows : (band + 1) * rows]
            same = (values[pairs[:, 0]] == values[pairs[:, 1]]).all(axis=1)
            found.append(pairs[same])
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.sort(np.concatenate(found), axis=1).astype(np.int64)
    codes = sorted_unique(pairs[:, 0] * n + pairs[:, 1])
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


def verify_pairs(sets: Mapping[int, np.ndarray], pairs: np.ndarray) -> np.ndarray:
    """Exact Jaccard of each pair's shingle sets (``sets`` maps an index to its sorted distinct hashes)."""
    indices = np.array(sorted(sets), dtype=np.int64)
    arrays = [np.asarray(sets[int(i)], dtype=_U64) for i in indices]
    offsets = np.zeros(len(indices) + 1, dtype=np.int64)
    np.cumsum([len(a) for a in arrays], out=offsets[1:])
    flat = np.concatenate(arrays) if arrays else np.zeros(0, dtype=_U64)
    return ShingleSetTable(indices, flat, offsets).jaccard(pairs)


@dataclass
class ShingleSetTable:
    """Sorted distinct 64-bit shingle hashes of chosen texts, flat: ``hashes[offsets[k]:offsets[k+1]]`` is ``indices[k]``'s."""

    indices: np.ndarray  # sorted text indices
    hashes: np.ndarray
    offsets: np.ndarray
    ranks: np.ndarray | None = None  # dense ids of ``hashes`` in the same order (computed when missing)

    @classmethod
    def build(cls, texts: Sequence[str], indices: np.ndarray, hasher: MinHasher) -> ShingleSetTable:
        """The sets of ``texts[i]`` for ``i`` in ``indices``, shingled as ``hasher`` does."""
        indices = sorted_unique(np.asarray(indices, dtype=np.int64))
        chosen = [texts[int(i)] for i in indices]
        distinct, ranks, offsets = shingle_set_ranks(chosen, hasher.ngram, hasher.unit, hasher.normalize)
        return cls(indices, distinct[ranks], offsets, ranks)

    def extended(self, texts: Sequence[str], indices: np.ndarray, hasher: MinHasher) -> ShingleSetTable:
        """This table plus the sets of ``indices`` it lacks."""
        missing = np.setdiff1d(np.asarray(indices, dtype=np.int64), self.indices)
        if len(missing) == 0:
            return self
        more = ShingleSetTable.build(texts, missing, hasher)
        indices = np.concatenate([self.indices, more.indices])
        sizes = np.concatenate([np.diff(self.offsets), np.diff(more.offsets)])
        starts = np.concatenate([self.offsets[:-1], more.offsets[:-1] + len(self.hashes)])
        order = np.argsort(indices)
        flat = np.concatenate([self.hashes, more.hashes])
        offsets = np.zeros(len(order) + 1, dtype=np.int64)
        np.cumsum(sizes[order], out=offsets[1:])
        positions = np.repeat(starts[order] - offsets[:-1], sizes[order]) + np.arange(offsets[-1])
        return ShingleSetTable(indices[order], flat[positions], offsets)

    def jaccard(self, pairs: np.ndarray) -> np.ndarray:
        """Exact Jaccard of each ``(i, j)`` pair; both texts must be in the table."""
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        rows = np.searchsorted(self.indices, pairs)
        if len(pairs) and not np.array_equal(self.indices[np.minimum(rows, len(self.indices) - 1)], pairs):
            raise KeyError("a pair names a text whose shingle set is not in the table")
        if self.ranks is None:
            self.ranks = unique_inverse(self.hashes)[2]
        return pair_jaccard(self.ranks, self.offsets, rows[:, 0], rows[:, 1])

    def as_dict(self) -> dict[int, np.ndarray]:
        """``{index: sorted distinct hashes}``."""
        parts = split_at_offsets(self.hashes, self.offsets)
        return {int(i): part for i, part in zip(self.indices, parts, strict=True)}


# A candidate whose MinHash estimate is this far below the threshold is dropped without the exact
# check: at 260 permutations the estimate's standard deviation is ≤ 0.031, so 0.15 is ≥ 5 of them.
ESTIMATE_MARGIN = 0.15


def verify_candidates(
    texts: Sequence[str],
    signatures: np.ndarray | None,
    candidates: np.ndarray,
    threshold: float,
    hasher: MinHasher,
    estimates: np.ndarray | None = None,
) -> tuple[np.ndarray, ShingleSetTable]:
    """The candidate pairs whose exact Jaccard ≥ ``threshold``; clearly lower MinHash estimates
    (from ``signatures``, or given as ``estimates``) skip the exact check."""
    candidates = np.asarray(candidates, dtype=np.int64).reshape(-1, 2)
    if estimates is None:
        if signatures is None:
            raise ValueError("verify_candidates needs signatures or estimates")
        estimates = minhash_jaccard(signatures, candidates)
    candidates = candidates[np.asarray(estimates) >= threshold - ESTIMATE_MARGIN]
    table = ShingleSetTable.build(texts, sorted_unique(candidates.ravel()), hasher)
    return candidates[table.jaccard(candidates) >= threshold], table


@dataclass
class FuzzyEdges:
    """The fuzzy step before the keep rule: signatures, LSH candidates, (verified) edges, the sets read, step seconds."""

    signatures: np.ndarray
    edges: np.ndarray
    set_table: ShingleSetTable
    hasher: MinHasher
    seconds: dict[str, float] = field(default_factory=dict)
    candidates: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))

    @property
    def sets(self) -> dict[int, np.ndarray]:
        """The shingle sets read by the verification, by text index."""
        return self.set_table.as_dict()


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
    threads: int = 1,
    hasher: MinHasher | None = None,
) -> FuzzyEdges:
    """MinHash → LSH candidates → (with ``verify``) only pairs whose exact Jaccard ≥ ``threshold``."""
    hasher = hasher or MinHasher(bands * rows, ngram, unit, seed, normalize, batch_size, threads=threads)
    seconds = {}
    mark = time.perf_counter()
    signatures = hasher.signatures(texts)
    seconds["signatures"] = time.perf_counter() - mark
    mark = time.perf_counter()
    candidates = lsh_candidate_pairs(signatures, bands, rows, max_bucket_size)
    seconds["lsh"] = time.perf_counter() - mark
    mark = time.perf_counter()
    empty = ShingleSetTable(np.zeros(0, np.int64), np.zeros(0, _U64), np.zeros(1, np.int64))
    edges, table = (
        verify_candidates(texts, signatures, candidates, threshold, hasher) if verify else (candidates, empty)
    )
    seconds["verify"] = time.perf_counter() - mark
    return FuzzyEdges(signatures, edges, table, hasher, seconds, candidates)


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
    threads: int = 1,
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
        threads=threads,
        hasher=hasher,
    )
    n = len(texts)
    kept_of = _choose_kept(connected_components(n, found.edges), texts, keep)
    removed = np.flatnonzero(kept_of != np.arange(n))
    pairs = np.stack([removed, kept_of[removed]], axis=1)
    if verify:  # a removed item may join its kept one only through others: report their own Jaccard
        scores = found.set_table.extended(texts, sorted_unique(pairs.ravel()), found.hasher).jaccard(pairs)
    else:
        scores = minhash_jaccard(found.signatures, pairs)
    return StepResult(
        n=n,
        kept=np.flatnonzero(kept_of == np.arange(n)),
        pairs=[DuplicatePair(int(r), int(k), float(s)) for (r, k), s in zip(pairs, scores, strict=True)],
    )


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
