"""Paired supervision: every row a target once per epoch, references of the same style, official augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageChops

from megastyle.data import StyleRecord, encode_png, write_shard
from megastyle.testing import random_images
from megastyle.transfer.data import (
    PairDataset,
    ReferenceAugment,
    RowImages,
    batches_per_epoch,
    load_rows,
    local_batch,
    plan_epoch,
    trainable_rows,
)


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 styles of 4, 3 and 1 rows; row s1_c1 has a corrupt image."""
    out = tmp_path_factory.mktemp("pairs") / "shards"
    images = iter(random_images(8, size=(40, 32), seed=1))
    records = []
    for style, count in ((0, 4), (1, 3), (2, 1)):
        for content in range(count):
            image = b"not an image" if (style, content) == (1, 1) else encode_png(next(images))
            records.append(
                StyleRecord(
                    id=f"s{style}_c{content}",
                    image=image,
                    style=f"style {style}",
                    content=f"content {style}.{content}",
                )
            )
    write_shard(out / "train-00000.parquet", records, row_group_size=3)
    return out


def test_every_row_is_a_target_once_and_references_share_its_style(shards: Path) -> None:
    data = load_rows([shards])
    rows = trainable_rows(data)
    assert len(rows) == 7  # the lone row of style 2 cannot form a pair
    for epoch in range(3):
        plan = plan_epoch(data, rows, epoch, seed=4)
        assert sorted(plan.targets.tolist()) == sorted(rows.tolist())
        assert (plan.targets != plan.references).all()
        assert (data.labels[plan.targets] == data.labels[plan.references]).all()
    assert not np.array_equal(plan_epoch(data, rows, 0, 4).targets, plan_epoch(data, rows, 1, 4).targets)
    assert np.array_equal(plan_epoch(data, rows, 1, 4).references, plan_epoch(data, rows, 1, 4).references)


def test_processes_split_each_global_batch(shards: Path) -> None:
    data = load_rows([shards])
    plan = plan_epoch(data, trainable_rows(data), 0, seed=0)
    assert (
        batches_per_epoch(len(plan), batch_size=2, world_size=2) == 1
    )  # 7 pairs: one batch of 4, rest dropped
    shares = [local_batch(plan, 0, 2, 2, rank) for rank in (0, 1)]
    assert shares == [[0, 1], [2, 3]]


def test_official_augmentation_probabilities_and_determinism() -> None:
    image = random_images(1, size=(64, 64), seed=3)[0]
    augment = ReferenceAugment()
    outcomes = {"flip": 0, "crop": 0}
    for seed in range(400):
        out = augment(image, seed)
        assert ImageChops.difference(out, augment(image, seed)).getbbox() is None  # same seed, same image
        flipped = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if out.size != image.size or (
            ImageChops.difference(out, image).getbbox() and ImageChops.difference(flipped, image).getbbox()
        ):
            outcomes["crop"] += 1
        elif ImageChops.difference(out, image).getbbox():
            outcomes["flip"] += 1
    # P(crop) = 0.5 (a crop of area ≥ 0.8 always changes the image); P(flip only) = 0.5 · 0.5.
    assert outcomes["crop"] / 400 == pytest.approx(0.5, abs=0.08)
    assert outcomes["flip"] / 400 == pytest.approx(0.25, abs=0.07)
    never = ReferenceAugment(flip_p=0.0, crop_p=0.0)
    assert all(ImageChops.difference(never(image, s), image).getbbox() is None for s in range(20))


def test_dataset_items_and_bad_images_are_replaced_by_their_style(shards: Path) -> None:
    data = load_rows([shards])
    images = RowImages(data)
    bad = int(np.flatnonzero(data.labels == data.styles.index("style 1"))[1])
    _, prompt, used = images.load(bad)
    assert used != bad and data.labels[used] == data.labels[bad] and prompt.startswith("content 1.")
    assert bad in images.bad_rows and "s1_c1" in images.bad_rows[bad]
    plan = plan_epoch(data, trainable_rows(data), 0, seed=0)
    dataset = PairDataset(images, plan, width=32, height=32, augment=ReferenceAugment(), seed=0, epoch=0)
    item = dataset[0]
    assert item["target"].shape == item["reference"].shape == (3, 32, 32)
    assert float(item["target"].min()) >= 0.0 and float(item["target"].max()) <= 1.0
    target_row = int(plan.targets[0])
    if target_row != bad:
        assert item["prompt"] == images.row(target_row)["content"]
