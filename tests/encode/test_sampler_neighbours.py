"""Neighbour batches of the P×K sampler: look-alike styles (by style-prompt embedding) share batches."""

from __future__ import annotations

import numpy as np
import pytest

from megastyle.encode.sampler import PKBatchSampler, batch_labels

# 10 styles × 8 rows; label = row % 10.
LABELS = np.arange(80) % 10


def _twin_embeddings() -> np.ndarray:
    """Five pairs of look-alike styles: 2i and 2i + 1 point almost the same way, pairs are orthogonal."""
    table = np.zeros((10, 5))
    for style in range(10):
        table[style, style // 2] = 1.0
        table[style, (style // 2 + 1) % 5] = 0.01 * (style % 2)
    return table


def _batch_styles(sampler: PKBatchSampler, labels: np.ndarray = LABELS) -> list[list[int]]:
    k = sampler.images_per_style
    return [batch_labels(labels, batch)[::k].tolist() for batch in sampler]


def test_full_share_puts_each_style_with_its_nearest() -> None:
    sampler = PKBatchSampler(LABELS, 2, 4, seed=0, style_embeddings=_twin_embeddings(), neighbour_share=1.0)
    batches = _batch_styles(sampler)
    assert len(batches) == 10  # 10 styles × 2 groups, two groups per batch: nothing left over
    assert all(a // 2 == b // 2 for a, b in batches)


def test_random_batches_rarely_pair_twins() -> None:
    # The same draw without neighbours: twins meet only by chance (1 in 9 per batch).
    sampler = PKBatchSampler(LABELS, 2, 4, seed=0)
    pairs = [a // 2 == b // 2 for a, b in _batch_styles(sampler)]
    assert sum(pairs) < len(pairs) / 2


def test_partial_share_mixes_neighbours_and_random_styles() -> None:
    # Styles on a quarter circle, unevenly spaced (no ties): nearness is the angle between them.
    angles = np.pi / 2 * (np.arange(10) / 9) ** 1.5
    embeddings = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    # P = 5: the first style, round(0.5 × 4) = 2 nearest, 2 at random.
    sampler = PKBatchSampler(LABELS, 5, 2, seed=3, style_embeddings=embeddings, neighbour_share=0.5)
    batches = _batch_styles(sampler)
    first, *others = batches[0]
    nearest = sorted(range(10), key=lambda s: abs(angles[s] - angles[first]))[1:3]
    assert others[:2] == nearest  # every style still has groups in the first batch
    near_gap = np.mean([abs(angles[b[0]] - angles[s]) for b in batches for s in b[1:3]])
    rest_gap = np.mean([abs(angles[b[0]] - angles[s]) for b in batches for s in b[3:]])
    assert 2 * near_gap < rest_gap
    assert all(len(set(b)) == 5 for b in batches)


def test_neighbour_batches_cover_the_epoch_and_are_reproducible() -> None:
    kwargs = {"style_embeddings": _twin_embeddings(), "neighbour_share": 0.5}
    a = PKBatchSampler(LABELS, 4, 2, seed=5, **kwargs)
    rows = [row for batch in a for row, _ in batch]
    assert len(set(rows)) >= 72  # 40 groups of 2, at most P − 1 groups left over
    assert [list(b) for b in PKBatchSampler(LABELS, 4, 2, seed=5, **kwargs)] == [
        list(b) for b in PKBatchSampler(LABELS, 4, 2, seed=5, **kwargs)
    ]


def test_labels_index_the_embedding_table() -> None:
    # Labels 3 and 7 only: the table rows 3 and 7 are theirs, whatever the other rows hold.
    labels = np.array([3, 7] * 8)
    table = np.zeros((8, 2))
    table[3], table[7] = [1.0, 0.0], [0.0, 1.0]
    sampler = PKBatchSampler(labels, 2, 4, seed=0, style_embeddings=table, neighbour_share=1.0)
    assert sorted(map(sorted, _batch_styles(sampler, labels))) == [[3, 7]] * 2


def test_bad_neighbour_settings_are_named() -> None:
    with pytest.raises(ValueError, match="needs style_embeddings"):
        PKBatchSampler(LABELS, 4, 2, neighbour_share=0.5)
    with pytest.raises(ValueError, match=r"neighbour_share must be in \[0, 1\]"):
        PKBatchSampler(LABELS, 4, 2, style_embeddings=_twin_embeddings(), neighbour_share=1.5)
    with pytest.raises(ValueError, match="a row per style label"):
        PKBatchSampler(LABELS, 4, 2, style_embeddings=np.ones((5, 3)), neighbour_share=0.5)
    zero = _twin_embeddings()
    zero[4] = 0.0
    with pytest.raises(ValueError, match="all-zero row"):
        PKBatchSampler(LABELS, 4, 2, style_embeddings=zero, neighbour_share=0.5)
