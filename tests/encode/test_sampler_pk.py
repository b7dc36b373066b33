"""P×K batch sampler: batch composition, determinism, epochs, small styles, ranks and resume."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from megastyle.encode.sampler import PKBatchSampler, batch_labels

# 10 styles × 8 rows, rows of a style interleaved with the others (label = row % 10).
LABELS = np.arange(80) % 10


def _rows(batch: list[tuple[int, int]]) -> list[int]:
    return [row for row, _ in batch]


def test_every_batch_has_k_images_of_p_distinct_styles() -> None:
    sampler = PKBatchSampler(LABELS, styles_per_batch=4, images_per_style=4, seed=0)
    batches = list(sampler)
    assert len(batches) == len(PKBatchSampler(LABELS, 4, 4, seed=0)) >= 4
    for batch in batches:
        labels = batch_labels(LABELS, batch)
        assert len(batch) == 16
        groups = labels.reshape(4, 4)  # K consecutive rows per style
        assert (groups == groups[:, :1]).all()
        assert len(set(groups[:, 0].tolist())) == 4
        assert len(set(_rows(batch))) == 16  # styles have ≥ K rows: no repeats within a batch


def test_epoch_covers_most_rows_and_epochs_differ() -> None:
    sampler = PKBatchSampler(LABELS, styles_per_batch=5, images_per_style=4, seed=1)
    first = [_rows(b) for b in sampler]
    seen = Counter(row for batch in first for row in batch)
    assert len(seen) >= 60  # 20 groups, at most a few left over at the epoch's end
    sampler.set_epoch(1)
    second = [_rows(b) for b in sampler]
    assert first != second
    sampler.set_epoch(0)
    assert [_rows(b) for b in sampler] == first


def test_same_seed_same_batches_other_seed_other_batches() -> None:
    a = list(PKBatchSampler(LABELS, 4, 2, seed=3))
    b = list(PKBatchSampler(LABELS, 4, 2, seed=3))
    c = list(PKBatchSampler(LABELS, 4, 2, seed=4))
    assert a == b
    assert a != c


def test_small_styles_replace_or_skip() -> None:
    labels = np.array([0] * 6 + [1] * 6 + [2] * 2 + [3] * 6)  # style 2 has fewer than K = 4 rows
    replace = PKBatchSampler(labels, 2, 4, seed=0, small_styles="replace")
    skip = PKBatchSampler(labels, 2, 4, seed=0, small_styles="skip")
    replace_labels = {int(x) for b in replace for x in batch_labels(labels, b)}
    skip_labels = {int(x) for b in skip for x in batch_labels(labels, b)}
    assert 2 in replace_labels
    assert 2 not in skip_labels
    # Style 2's group is its 2 rows drawn with replacement to 4.
    for batch in replace.epoch_batches(0):
        style2 = [r for r in batch if labels[r] == 2]
        assert len(style2) in (0, 4) and set(style2) <= {12, 13}


def test_too_few_styles_and_bad_world_size_are_errors() -> None:
    with pytest.raises(ValueError, match="distinct styles"):
        PKBatchSampler(np.array([0] * 8 + [1] * 2), 2, 4, small_styles="skip")
    with pytest.raises(ValueError, match="divisible"):
        PKBatchSampler(LABELS, 5, 2, world_size=2, rank=0)
    with pytest.raises(ValueError, match="rank"):
        PKBatchSampler(LABELS, 4, 2, world_size=2, rank=2)


def test_ranks_split_each_global_batch_by_style_groups() -> None:
    single = list(PKBatchSampler(LABELS, 4, 2, seed=5))
    ranks = [list(PKBatchSampler(LABELS, 4, 2, seed=5, world_size=2, rank=r)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(single)
    for whole, part0, part1 in zip(single, ranks[0], ranks[1], strict=True):
        # Same rows and the same augmentation seeds as the single-process run, half each.
        assert part0 + part1 == whole
        assert len(set(batch_labels(LABELS, part0)) & set(batch_labels(LABELS, part1))) == 0


def test_resume_from_a_saved_position_continues_identically() -> None:
    full = PKBatchSampler(LABELS, 4, 2, seed=6)
    full.set_epoch(2)
    expected = list(full)
    sampler = PKBatchSampler(LABELS, 4, 2, seed=6)
    sampler.set_epoch(2)
    iterator = iter(sampler)
    head = [next(iterator), next(iterator)]
    state = sampler.state_dict()
    resumed = PKBatchSampler(LABELS, 4, 2, seed=6)
    resumed.load_state_dict(state)
    assert head + list(resumed) == expected
    with pytest.raises(ValueError, match="seed"):
        PKBatchSampler(LABELS, 4, 2, seed=7).load_state_dict(state)
