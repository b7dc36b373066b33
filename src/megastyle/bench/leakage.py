"""Content leakage matched on the style pair, and paired differences of it between encoders.

The global leakage AUC (``dataset_quality``) ranks same-content pairs of two styles against
different-content pairs of *any* two styles. How alike two styles look varies far more than what
a shared content adds, so that comparison is dominated by which style pairs happened to be drawn.
The matched measure compares each same-content pair (i of style A, j of style B, content c) only
with pairs of the *same two styles* that do not share c: i against B's other images and j against
A's other images. Its value for the pair is the share of those it outscores (ties count ½); the
mean over pairs is an AUC (0.5 = no leakage) with the style pair held fixed.

Pairs are chosen from the labels and the seed alone, so two encoders embedding the same images get
the same pairs, and their difference is taken pair by pair (``paired_leakage_difference``), with a
bootstrap that resamples whole contents (a content's pairs share images).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from megastyle.bench.compare import cluster_bootstrap_interval

CHUNK_PAIRS = 4096  # pairs scored per step at most
CHUNK_VALUES = 1 << 24  # and at most this many gathered floats (pairs × images per style × dim): 128 MiB


@dataclass(frozen=True)
class MatchedLeakage:
    """Per same-content pair: the share of matched different-content pairs it outscores."""

    pairs: np.ndarray  # (P, 2) image indices, different styles, same content
    values: np.ndarray  # (P,) in [0, 1]
    contents: np.ndarray  # (P,) content code of each pair (the bootstrap's clusters)

    @property
    def auc(self) -> float | None:
        """Mean over pairs (0.5 = no leakage); None without pairs."""
        return float(self.values.mean()) if len(self.values) else None

    def interval(self, reps: int = 200, seed: int = 0) -> tuple[float, float] | None:
        """95% bootstrap interval of the AUC, resampling whole contents; None without pairs."""
        if not len(self.values):
            return None
        return cluster_bootstrap_interval(self.values, self.contents, reps=reps, seed=seed)


def same_content_pairs(
    contents: np.ndarray, styles: np.ndarray, limit: int, rng: np.random.Generator
) -> np.ndarray:
    """All different-style pairs sharing a content, or a seeded sample of ``limit`` of them."""
    by_content: dict[object, list[int]] = defaultdict(list)
    for i, content in enumerate(contents.tolist()):
        by_content[content].append(i)
    pairs = [
        (rows[i], rows[j])
        for rows in by_content.values()
        for i in range(len(rows))
        for j in range(i + 1, len(rows))
        if styles[rows[i]] != styles[rows[j]]
    ]
    out = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if len(out) > limit:
        out = out[np.sort(rng.choice(len(out), size=limit, replace=False))]
    return out


def _members(style_codes: np.ndarray, n_styles: int) -> np.ndarray:
    """(styles, most images of a style) image indices, padded with -1."""
    order = np.argsort(style_codes, kind="stable")
    counts = np.bincount(style_codes, minlength=n_styles)
    members = np.full((n_styles, int(counts.max())), -1, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for s in range(n_styles):
        members[s, : counts[s]] = order[starts[s] : starts[s] + counts[s]]
    return members


def _outscored(pos: np.ndarray, neg: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: (wins + ½ ties over valid negatives, number of valid negatives)."""
    wins = ((pos[:, None] > neg) + 0.5 * (pos[:, None] == neg)) * valid
    return wins.sum(axis=1), valid.sum(axis=1)


def matched_leakage(
    embeddings: np.ndarray,
    style_labels: Sequence[object],
    content_labels: Sequence[object],
    *,
    max_pairs: int = 200_000,
    seed: int = 0,
) -> MatchedLeakage:
    """Score every same-content pair of different styles against different-content pairs of those styles."""
    x = np.asarray(embeddings, dtype=np.float64)
    styles, contents = np.asarray(style_labels), np.asarray(content_labels)
    if not len(styles) == len(contents) == len(x):
        raise ValueError(
            f"matched leakage: {len(x)} embeddings, {len(styles)} style labels, {len(contents)} content labels"
        )
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms > 0, norms, 1.0)
    _, style_codes = np.unique(styles, return_inverse=True)
    _, content_codes = np.unique(contents, return_inverse=True)
    pairs = same_content_pairs(content_codes, style_codes, max_pairs, np.random.default_rng(seed))
    empty = np.zeros(0, dtype=np.float64)
    if not len(pairs):
        return MatchedLeakage(pairs, empty, np.zeros(0, dtype=np.int64))
    members = _members(style_codes, int(style_codes.max()) + 1)
    chunk = max(1, min(CHUNK_PAIRS, CHUNK_VALUES // (members.shape[1] * x.shape[1])))
    values, kept = [], []
    for start in range(0, len(pairs), chunk):
        i, j = pairs[start : start + chunk].T
        pos = np.einsum("pd,pd->p", x[i], x[j])
        wins, count = np.zeros(len(i)), np.zeros(len(i))
        # i against j's style-mates of other contents, then j against i's.
        for anchor, other in ((i, j), (j, i)):
            mates = members[style_codes[other]]  # (p, k), -1 padded
            valid = (mates >= 0) & (content_codes[np.maximum(mates, 0)] != content_codes[anchor][:, None])
            neg = np.einsum("pd,pkd->pk", x[anchor], x[np.maximum(mates, 0)])
            w, c = _outscored(pos, neg, valid)
            wins, count = wins + w, count + c
        ok = count > 0  # a pair whose two styles hold only that content has nothing to compare with
        values.append(wins[ok] / count[ok])
        kept.append(start + np.flatnonzero(ok))
    index = np.concatenate(kept)
    return MatchedLeakage(pairs[index], np.concatenate(values), content_codes[pairs[index, 0]])


@dataclass(frozen=True)
class LeakageDifference:
    """``encoder − other`` in matched leakage over the same pairs (negative: the encoder leaks less)."""

    encoder: str
    other: str
    difference: float
    ci95: tuple[float, float]  # bootstrap over contents
    less: int  # pairs where the encoder's value is lower
    more: int  # pairs where it is higher
    pairs: int
    contents: int

    def as_dict(self) -> dict[str, Any]:
        """Plain fields for JSON."""
        return asdict(self)


def paired_leakage_difference(
    scores: Mapping[str, MatchedLeakage], encoder: str, other: str, *, reps: int = 2000, seed: int = 0
) -> LeakageDifference:
    """``encoder − other`` pair by pair, with a 95% interval resampling contents."""
    for name in (encoder, other):
        if name not in scores:
            raise KeyError(f"no encoder {name!r} in these leakage scores (have: {', '.join(scores)})")
    a, b = scores[encoder], scores[other]
    if a.pairs.shape != b.pairs.shape or not np.array_equal(a.pairs, b.pairs):
        raise ValueError(
            f"leakage of {encoder!r} and {other!r} was measured on different pairs: embed the same images "
            "with the same labels and seed"
        )
    if not len(a.values):
        raise ValueError("no same-content pairs of different styles to compare")
    delta = a.values - b.values
    return LeakageDifference(
        encoder=encoder,
        other=other,
        difference=float(delta.mean()),
        ci95=cluster_bootstrap_interval(delta, a.contents, reps=reps, seed=seed),
        less=int((delta < 0).sum()),
        more=int((delta > 0).sum()),
        pairs=len(delta),
        contents=len(np.unique(a.contents)),
    )


def compare_leakage(
    scores: Mapping[str, MatchedLeakage], encoder: str | None = None, *, reps: int = 2000, seed: int = 0
) -> list[LeakageDifference]:
    """``encoder`` (default: the first) against every other encoder."""
    names = list(scores)
    encoder = encoder or names[0]
    if encoder not in scores:
        raise KeyError(f"no encoder {encoder!r} in these leakage scores (have: {', '.join(names)})")
    return [
        paired_leakage_difference(scores, encoder, other, reps=reps, seed=seed)
        for other in names
        if other != encoder
    ]
