"""Our shards load with Hugging Face `datasets` exactly like the release: `image` decodes to PIL."""

from __future__ import annotations

import os

import pytest
from PIL import Image

from megastyle.data import ShardWriter, build_style_index, list_shards

datasets = pytest.importorskip("datasets")


@pytest.fixture(autouse=True)
def _offline(monkeypatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_load_dataset_decodes_image_from_our_shard(tmp_path, record_factory) -> None:
    shards = tmp_path / "shards"
    records = [record_factory(s, c, size=(48, 32)) for s in range(2) for c in range(3)]
    with ShardWriter(shards, row_group_size=4) as writer:
        writer.write_many(records)
    ds = datasets.load_dataset(
        "parquet",
        data_files=[str(p) for p in list_shards(shards)],
        split="train",
        cache_dir=str(tmp_path / "hf-cache"),
    )
    assert len(ds) == 6
    assert isinstance(ds.features["image"], datasets.Image)
    first = ds[0]
    assert isinstance(first["image"], Image.Image)
    assert first["image"].size == (48, 32)
    assert first["image"].convert("RGB").getpixel((5, 5)) == (0, 0, 90)
    assert first["id"] == "s0_c0" and first["style_id"] == 0 and first["seed"] == records[0].seed
    assert ds[5]["content"] == records[5].content
    assert ds.column_names == ["id", "image", "content", "style", *list(ds.column_names[4:])]


def test_load_dataset_from_directory_ignores_our_side_files(tmp_path, record_factory) -> None:
    shards = tmp_path / "shards"
    with ShardWriter(shards, validate=True, write_rejects=True) as writer:
        writer.write_many([record_factory(0, c) for c in range(4)])
        bad = record_factory(0, 9)
        bad.image = b"broken"
        writer.write(bad)
    build_style_index(shards)  # leaves the hidden index cache beside the shards
    (shards / ".train-00001.parquet.0123456789abcdef0123456789abcdef.tmp").write_bytes(b"half a shard")
    assert sorted(os.listdir(shards)) == [
        ".style_index.parquet",
        ".train-00001.parquet.0123456789abcdef0123456789abcdef.tmp",
        "rejects.jsonl",
        "train-00000.parquet",
    ]
    ds = datasets.load_dataset(
        "parquet",
        data_dir=str(shards),  # the whole folder: temp file, index cache and rejects must not leak in
        split="train",
        cache_dir=str(tmp_path / "hf-cache"),
    )
    assert ds["id"] == [f"s0_c{c}" for c in range(4)]
