"""Content leakage matched on the style pair, and paired differences of it between encoders.

The global leakage AUC (``dataset_quality``) ranks same-content pairs of two styles against
different-content pairs of *any* two styles. How alike two styles look varies far more than what
a shared content adds, so that comparison is dominated by which style pairs happened to be drawn.
The matched measure compares each same-content pair (i of style A, j of style B, content c) only
with pairs of the *same two styles* that do not share c: i against B's other images and j against
A's other images. Its value for the pair is the share of those it outscores (ties count ½); the
mean over pairs is an AUC (0.5 = no leakage) with the style pair held fixed.

Pairs are chosen from the labels and the seed alone, so two encoders embedding the same images get
the same pairs, and their difference is taken pair by pair (``paired_leakage_difference``).

Intervals come from a two-way (pigeonhole) bootstrap that resamples contents and styles at once:
a content's pairs share images, and a style's pairs share the negatives drawn from it, so neither
pairs nor contents alone are independent. Resampling contents only gave intervals about half as wide
on the quickstart. The two-way bootstrap errs on the wide side (Owen 2007, "The pigeonhole
bootstrap"), so an interval that excludes 0.5, or 0 for a difference, is a safe reading.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

CHUNK_PAIRS = 4096  # pairs scored per step at most
CHUNK_VALUES = 1 << 24  # and at most this many gathered floats (pairs × images per style × dim): 128 MiB
# Up to this many images all cosines come from one n × n matrix (128 MiB): far faster for wide embeddings.
GRAM_MAX_IMAGES = 4096
# Cosines are compared after rounding to this many decimals, so that a matrix product and a row-wise
# dot product (different rounding) break the same exact ties the same way.
COSINE_DECIMALS = 12


@dataclass(frozen=True)
class MatchedLeakage:
    """Per same-content pair: the share of matched different-content pairs it outscores."""

    pairs: np.ndarray  # (P, 2) image indices, different styles, same content
    values: np.ndarray  # (P,) in [0, 1]
    contents: np.ndarray  # (P,) content code of each pair
    styles: np.ndarray  # (P, 2) style codes of each pair's two images

    @property
    def auc(self) -> float | None:
        """Mean over pairs (0.5 = no leakage); None without pairs."""
        return float(self.values.mean()) if len(self.values) else None

    def interval(self, reps: int = 200, seed: int = 0) -> tuple[float, float] | None:
        """95% interval of the AUC, resampling contents and styles (``two_way_interval``); None without pairs."""
        if not len(self.values):
            return None
        try:
            return two_way_interval(self.values, self.contents, self.styles, reps=reps, seed=seed)
        except ValueError:  # too few contents and styles for any resample to keep a pair
            return None


def _codes(strata: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes of (stratum, label) in stratum-major order, and each code's stratum code."""
    labels = np.asarray(labels)
    if labels.dtype == object:  # np.unique cannot sort arbitrary objects; their text is a faithful key
        labels = labels.astype(str)
    _, stratum_code = np.unique(np.asarray(strata), return_inverse=True)
    label_ids, label_code = np.unique(labels, return_inverse=True)
    unique, code = np.unique(stratum_code.ravel() * len(label_ids) + label_code.ravel(), return_inverse=True)
    return code.ravel(), unique // len(label_ids)


def _resample_counts(stratum_of: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """How often each cluster is drawn when every stratum draws as many clusters as it has."""
    counts = np.zeros(len(stratum_of), dtype=np.float64)
    for stratum in np.unique(stratum_of):
        members = np.flatnonzero(stratum_of == stratum)
        counts[members] = np.bincount(rng.integers(0, len(members), len(members)), minlength=len(members))
    return counts


def two_way_interval(
    values: np.ndarray,
    contents: np.ndarray,
    styles: np.ndarray,
    *,
    strata: np.ndarray | None = None,
    reps: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """95% interval of the mean over pairs, resampling contents and styles together (pigeonhole bootstrap).

    A pair weighs (draws of its content) × (draws of its first style) × (draws of its second style).
    With ``strata`` (e.g. one per run), clusters are resampled within their stratum.
    """
    values = np.asarray(values, dtype=np.float64)
    styles = np.asarray(styles).reshape(-1, 2)
    if not len(values) == len(contents) == len(styles):
        raise ValueError(f"{len(values)} values for {len(contents)} contents and {len(styles)} style pairs")
    strata = np.zeros(len(values), dtype=np.int64) if strata is None else np.asarray(strata)
    content_code, content_stratum = _codes(strata, np.asarray(contents))
    style_code, style_stratum = _codes(
        np.concatenate([strata, strata]), np.concatenate([styles[:, 0], styles[:, 1]])
    )
    first, second = style_code[: len(values)], style_code[len(values) :]
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(reps):
        wc, ws = _resample_counts(content_stratum, rng), _resample_counts(style_stratum, rng)
        weight = wc[content_code] * ws[first] * ws[second]
        total = weight.sum()
        if total > 0:  # a draw that keeps no pair at all says nothing
            means.append(float(weight @ values / total))
    if not means:
        raise ValueError(f"two-way bootstrap: no resample of {len(values)} pairs kept a pair")
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def two_way_auc_interval(
    positive: np.ndarray,
    negative: np.ndarray,
    positive_labels: tuple[np.ndarray, np.ndarray],
    negative_labels: tuple[np.ndarray, np.ndarray],
    *,
    reps: int = 200,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """95% interval of P(positive > negative) + ½ P(=), resampling contents and styles together.

    ``positive_labels`` = (content of each positive pair, (P, 2) styles of its images);
    ``negative_labels`` = ((N, 2) contents, (N, 2) styles) of each negative pair. A pair weighs the
    product of the draws of every content and style it involves, as in ``two_way_interval``.
    """
    n_pos, n_neg = len(positive), len(negative)
    pos_content, pos_styles = positive_labels
    neg_contents, neg_styles = negative_labels
    _, content = np.unique(np.concatenate([pos_content, np.ravel(neg_contents)]), return_inverse=True)
    _, style = np.unique(np.concatenate([np.ravel(pos_styles), np.ravel(neg_styles)]), return_inverse=True)
    pc, nc = content[:n_pos], content[n_pos:].reshape(n_neg, 2)
    ps, ns = style[: 2 * n_pos].reshape(n_pos, 2), style[2 * n_pos :].reshape(n_neg, 2)
    # Rank once: every resample only reweights, so ties and order are fixed.
    unique, inverse = np.unique(np.concatenate([positive, negative]), return_inverse=True)
    pos_bin, neg_bin = inverse[:n_pos], inverse[n_pos:]
    n_content, n_style = int(content.max()) + 1, int(style.max()) + 1
    aucs = []
    for _ in range(reps):
        wc = np.bincount(rng.integers(0, n_content, n_content), minlength=n_content).astype(np.float64)
        ws = np.bincount(rng.integers(0, n_style, n_style), minlength=n_style).astype(np.float64)
        wp = wc[pc] * ws[ps[:, 0]] * ws[ps[:, 1]]
        wn = wc[nc[:, 0]] * wc[nc[:, 1]] * ws[ns[:, 0]] * ws[ns[:, 1]]
        if wp.sum() == 0 or wn.sum() == 0:
            continue
        aucs.append(weighted_auc(pos_bin, neg_bin, wp, wn, len(unique)))
    if not aucs:
        raise ValueError(
            f"two-way bootstrap: no resample kept both a positive and a negative of {n_pos} / {n_neg}"
        )
    low, high = np.percentile(aucs, [2.5, 97.5])
    return float(low), float(high)


def weighted_auc(
    pos_bin: np.ndarray, neg_bin: np.ndarray, wp: np.ndarray, wn: np.ndarray, bins: int
) -> float:
    """AUC of weighted samples given as value ranks (bins): a weight of k counts a sample k times."""
    at = np.bincount(neg_bin, weights=wn, minlength=bins)
    below = np.cumsum(at) - at
    return float(wp @ (below[pos_bin] + 0.5 * at[pos_bin]) / (wp.sum() * wn.sum()))


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


def normalise_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length in float64; all-zero rows stay zero."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float64)


def pair_cosines(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot products ``x[a] · x[b]``, gathered in chunks so wide embeddings stay within memory."""
    chunk = max(1, CHUNK_VALUES // max(1, 2 * x.shape[1]))
    out = np.empty(len(a), dtype=np.result_type(x.dtype, np.float32))
    for start in range(0, len(a), chunk):
        stop = start + chunk
        out[start:stop] = np.einsum("ij,ij->i", x[a[start:stop]], x[b[start:stop]])
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
    """Score same-content pairs of two styles (a seeded sample beyond ``max_pairs``) against those styles' others."""
    x = normalise_rows(np.asarray(embeddings, dtype=np.float64))
    styles, contents = np.asarray(style_labels), np.asarray(content_labels)
    if not len(styles) == len(contents) == len(x):
        raise ValueError(
            f"matched leakage: {len(x)} embeddings, {len(styles)} style labels, {len(contents)} content labels"
        )
    _, style_codes = np.unique(styles, return_inverse=True)
    _, content_codes = np.unique(contents, return_inverse=True)
    pairs = same_content_pairs(content_codes, style_codes, max_pairs, np.random.default_rng(seed))
    empty = np.zeros(0, dtype=np.float64)
    if not len(pairs):
        return MatchedLeakage(pairs, empty, np.zeros(0, dtype=np.int64), np.zeros((0, 2), dtype=np.int64))
    members = _members(style_codes, int(style_codes.max()) + 1)
    gram = x @ x.T if len(x) <= GRAM_MAX_IMAGES else None
    chunk = CHUNK_PAIRS if gram is not None else CHUNK_VALUES // (members.shape[1] * x.shape[1])
    chunk = max(1, min(CHUNK_PAIRS, chunk))
    values, kept = [], []
    for start in range(0, len(pairs), chunk):
        i, j = pairs[start : start + chunk].T
        pos = gram[i, j] if gram is not None else np.einsum("pd,pd->p", x[i], x[j])
        pos = np.round(pos, COSINE_DECIMALS)
        wins, count = np.zeros(len(i)), np.zeros(len(i))
        # i against j's style-mates of other contents, then j against i's.
        for anchor, other in ((i, j), (j, i)):
            mates = members[style_codes[other]]  # (p, k), -1 padded
            safe = np.maximum(mates, 0)
            valid = (mates >= 0) & (content_codes[safe] != content_codes[anchor][:, None])
            if gram is not None:
                neg = gram[anchor[:, None], safe]
            else:
                neg = np.einsum("pd,pkd->pk", x[anchor], x[safe])
            w, c = _outscored(pos, np.round(neg, COSINE_DECIMALS), valid)
            wins, count = wins + w, count + c
        ok = count > 0  # a pair whose two styles hold only that content has nothing to compare with
        values.append(wins[ok] / count[ok])
        kept.append(start + np.flatnonzero(ok))
    index = np.concatenate(kept)
    kept_pairs = pairs[index]
    return MatchedLeakage(
        kept_pairs, np.concatenate(values), content_codes[kept_pairs[:, 0]], style_codes[kept_pairs]
    )


@dataclass(frozen=True)
class LeakageDifference:
    """``encoder − other`` in matched leakage over the same pairs (negative: the encoder leaks less)."""

    encoder: str
    other: str
    difference: float
    ci95: tuple[float, float]  # two-way bootstrap over contents and styles
    less: int  # pairs where the encoder's value is lower
    more: int  # pairs where it is higher
    pairs: int
    contents: int
    styles: int

    def as_dict(self) -> dict[str, Any]:
        """Plain fields for JSON."""
        return asdict(self)


def paired_leakage_difference(
    scores: Mapping[str, MatchedLeakage], encoder: str, other: str, *, reps: int = 2000, seed: int = 0
) -> LeakageDifference:
    """``encoder − other`` pair by pair, with a 95% interval resampling contents and styles."""
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
        ci95=two_way_interval(delta, a.contents, a.styles, reps=reps, seed=seed),
        less=int((delta < 0).sum()),
        more=int((delta > 0).sum()),
        pairs=len(delta),
        contents=len(np.unique(a.contents)),
        styles=len(np.unique(a.styles)),
    )


def compare_leakage(
    scores: Mapping[str, MatchedLeakage], encoder: str | None = None, *, reps: int = 2000, seed: int = 0
) -> list[LeakageDifference]:
    """``encoder`` (default: the first) against every other encoder; empty when there are no pairs.

    Pairs come from the labels alone, so when one encoder has none, none has: nothing to compare.
    """
    names = list(scores)
    encoder = encoder or names[0]
    if encoder not in scores:
        raise KeyError(f"no encoder {encoder!r} in these leakage scores (have: {', '.join(names)})")
    if not len(scores[encoder].values):
        return []
    return [
        paired_leakage_difference(scores, encoder, other, reps=reps, seed=seed)
        for other in names
        if other != encoder
    ]
