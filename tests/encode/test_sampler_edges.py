"""P×K sampler at its edges: the validation texts, exactly-K styles, ranks' seeds, positions, neighbours."""

from __future__ import annotations

import numpy as np
import pytest

from megastyle.encode.sampler import PKBatchSampler, batch_labels

LABELS = np.arange(80) % 10  # 10 styles × 8 rows


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"styles_per_batch": 0, "images_per_style": 3}, r"^P and K must be ≥ 1, got P=0, K=3$"),
        ({"styles_per_batch": 2, "images_per_style": 0}, r"^P and K must be ≥ 1, got P=2, K=0$"),
        ({"small_styles": "drop"}, r"^small_styles must be 'replace' or 'skip', got 'drop'$"),
        (
            {"styles_per_batch": 3, "world_size": 2},
            r"^styles_per_batch 3 must be divisible by world_size 2 \(each rank takes an equal share of "
            r"every batch's styles\)$",
        ),
        (
            {"neighbour_share": 0.5},
            r"^neighbour_share > 0 needs style_embeddings \(one row per style label\)$",
        ),
    ],
)
def test_bad_settings_say_which_and_why(kwargs: dict[str, object], message: str) -> None:
    settings: dict[str, object] = {"styles_per_batch": 2, "images_per_style": 2} | kwargs
    with pytest.raises(ValueError, match=message):
        PKBatchSampler(LABELS, **settings)  # type: ignore[arg-type]


def test_labels_must_be_one_dimensional() -> None:
    with pytest.raises(ValueError, match=r"^labels must be one-dimensional$"):
        PKBatchSampler(LABELS.reshape(8, 10), 2, 2)


def test_one_style_of_one_image_is_a_valid_batch() -> None:
    batches = list(PKBatchSampler(np.arange(5), 1, 1, seed=3))
    assert sorted(row for batch in batches for row, _ in batch) == [0, 1, 2, 3, 4]


def test_the_default_seed_is_zero_and_labels_may_be_floats() -> None:
    default = [list(b) for b in PKBatchSampler(LABELS, 4, 4)]
    assert default == [list(b) for b in PKBatchSampler(LABELS, 4, 4, seed=0)]
    assert default == [list(b) for b in PKBatchSampler(LABELS.astype(float), 4, 4, seed=0)]


def test_no_labels_make_no_styles() -> None:
    with pytest.raises(ValueError, match=r"^only 0 styles can give 2 images"):
        PKBatchSampler(np.zeros(0, dtype=int), 1, 2)


def test_a_style_of_exactly_k_images_is_used_whole_and_small_ones_are_skipped_without_stopping() -> None:
    # Style 0 has 2 rows (< K), style 1 exactly K = 3, styles 2 and 3 have 6 (two groups each).
    labels = np.array([0, 0] + [1] * 3 + [2] * 6 + [3] * 6)
    sampler = PKBatchSampler(labels, 1, 3, small_styles="skip", seed=1)
    batches = [sorted(row for row, _ in batch) for batch in sampler]
    by_style = sorted((int(labels[b[0]]), b) for b in batches)
    assert [style for style, _ in by_style] == [1, 2, 2, 3, 3]
    assert by_style[0][1] == [2, 3, 4]  # the exactly-K style: its three rows, none repeated
    for style in (2, 3):
        rows = sorted(r for s, b in by_style if s == style for r in b)
        assert rows == sorted(np.flatnonzero(labels == style).tolist())  # two groups cover it once
    with pytest.raises(ValueError, match=r"^only 3 styles can give 3 images"):
        PKBatchSampler(labels, 4, 3, small_styles="skip")
    assert len(list(PKBatchSampler(labels, 4, 3, small_styles="replace"))) >= 1


def test_a_style_of_2k_plus_1_images_gives_three_groups_the_last_filled_from_its_own() -> None:
    labels = np.array([0] * 7 + [1] * 7)  # K = 3: groups 3, 3 and 1 + 2 refills
    batches = [[row for row, _ in batch] for batch in PKBatchSampler(labels, 1, 3, seed=2)]
    assert len(batches) == 6 and all(len(set(b)) == 3 for b in batches)
    for style in (0, 1):
        rows = [r for b in batches if labels[b[0]] == style for r in b]
        assert set(rows) == set(np.flatnonzero(labels == style).tolist())


def test_a_rows_augmentation_seed_does_not_depend_on_the_number_of_ranks() -> None:
    alone = list(PKBatchSampler(LABELS, 4, 2, seed=4))
    ranks = [list(PKBatchSampler(LABELS, 4, 2, seed=4, world_size=2, rank=r)) for r in (0, 1)]
    assert [a + b for a, b in zip(*ranks, strict=True)] == alone
    seeds = [seed for batch in alone for _, seed in batch]
    assert len(set(seeds)) == len(seeds) and all(0 <= s < 2**31 - 1 for s in seeds)


def test_position_counts_the_batches_handed_out() -> None:
    sampler = PKBatchSampler(LABELS, 4, 4, seed=5)
    iterator = iter(sampler)
    for expected in (1, 2, 3):
        next(iterator)
        assert sampler.position == expected


def test_neighbours_are_off_unless_shared_so_their_table_is_not_read() -> None:
    zero_row = np.vstack([np.zeros(4), np.eye(10, 4)[1:]])
    PKBatchSampler(LABELS, 2, 2, style_embeddings=zero_row, neighbour_share=0.0)
    with pytest.raises(ValueError, match="all-zero row"):
        PKBatchSampler(LABELS, 2, 2, style_embeddings=zero_row, neighbour_share=1.0)


def test_a_label_past_the_table_is_named() -> None:
    with pytest.raises(ValueError, match=r"got shape \(9, 3\) for labels up to 9$"):
        PKBatchSampler(LABELS, 2, 2, style_embeddings=np.ones((9, 3)), neighbour_share=1.0)


def test_neighbours_are_by_cosine_not_dot_product_and_list_every_other_style() -> None:
    # Style 1 points the way style 0 does but is short; style 2 is long and off to the side.
    table = np.array([[1.0, 0.0], [0.1, 0.0], [10.0, 8.0], [0.0, 1.0]])
    labels = np.repeat(np.arange(4), 2)
    sampler = PKBatchSampler(labels, 2, 2, style_embeddings=table, neighbour_share=1.0)
    order = sampler._neighbour_order(table)
    assert order.shape == (4, 3)
    assert order[0].tolist() == [1, 2, 3]


def test_equal_neighbours_keep_label_order() -> None:
    table = np.ones((40, 3))  # all equally near: more than the 16 numpy sorts stably by accident
    labels = np.repeat(np.arange(40), 2)
    order = PKBatchSampler(labels, 2, 2, style_embeddings=table, neighbour_share=1.0)._neighbour_order(table)
    assert order[5].tolist() == [i for i in range(40) if i != 5]


def test_neighbour_batches_hold_p_distinct_styles() -> None:
    rng = np.random.default_rng(6)
    table = rng.normal(size=(12, 4))
    labels = np.repeat(np.arange(12), 4)
    for share in (0.34, 0.67):
        sampler = PKBatchSampler(labels, 4, 2, style_embeddings=table, neighbour_share=share, seed=7)
        for batch in sampler:
            styles = batch_labels(labels, batch).reshape(4, 2)[:, 0]
            assert len(set(styles.tolist())) == 4
