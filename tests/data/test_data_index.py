"""Style index: grouping, cache reuse, invalidation when shards change."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import megastyle.data.index as index_module
from megastyle.data import (
    INDEX_CACHE_NAME,
    ShardReader,
    ShardWriter,
    StyleIndex,
    build_style_index,
    shard_name,
)


@pytest.fixture
def dataset(tmp_path, record_factory):
    """Styles 10, 11, 12 (8 rows each) then style 10 again for 2 rows, across shards of 10."""
    records = [record_factory(s, c) for s in (10, 11, 12) for c in range(8)]
    records += [record_factory(10, c) for c in (8, 9)]
    with ShardWriter(tmp_path, rows_per_shard=10, row_group_size=4) as writer:
        writer.write_many(records)
    return tmp_path, records


def _expected_groups(records) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for row, record in enumerate(records):
        groups.setdefault(record.style, []).append(row)
    return groups


def test_index_groups_rows_by_style(dataset) -> None:
    directory, records = dataset
    index = build_style_index(directory, cache=False)
    expected = _expected_groups(records)
    assert len(index) == 3 and index.num_rows == 26
    assert index.styles == list(expected)  # labels in first-appearance order
    for style, rows in expected.items():
        assert index.rows(style).tolist() == rows
    style10 = records[0].style
    assert index.rows(style10).tolist() == [*range(8), 24, 25]  # spans shards 0 and 2
    assert index.label(style10) == 0 and index.style_id(style10) == 10
    assert [index.style_id(s) for s in index.styles] == [10, 11, 12]
    labels = index.row_labels()
    assert labels.tolist() == [0] * 8 + [1] * 8 + [2] * 8 + [0, 0]
    assert [(s, r.tolist()) for s, r in index.groups()] == list(expected.items())
    assert records[5].style in index and "unknown style" not in index
    with pytest.raises(KeyError):
        index.rows("unknown style")
    assert not (directory / INDEX_CACHE_NAME).exists()  # cache=False writes nothing


def test_index_reads_only_small_columns(dataset, monkeypatch) -> None:
    directory, _ = dataset
    requested = []
    original = ShardReader.read_shard

    def spy(self, position, columns=None):
        requested.append(tuple(columns))
        return original(self, position, columns)

    monkeypatch.setattr(ShardReader, "read_shard", spy)
    build_style_index(directory, cache=False)
    assert requested == [("id", "style", "style_id")] * 3


def test_second_build_reads_the_cache(dataset, monkeypatch) -> None:
    directory, records = dataset
    first = build_style_index(directory)
    assert not first.loaded_from_cache
    assert (directory / INDEX_CACHE_NAME).is_file()

    def must_not_rebuild(reader):
        raise AssertionError("index rebuilt although the shards did not change")

    monkeypatch.setattr(index_module, "_build", must_not_rebuild)
    second = build_style_index(directory)
    assert second.loaded_from_cache
    assert second.styles == first.styles and second.style_ids == first.style_ids
    assert np.array_equal(second.order, first.order) and np.array_equal(second.offsets, first.offsets)
    assert second.rows(records[0].style).tolist() == [*range(8), 24, 25]


def test_adding_a_shard_rebuilds_the_index(dataset, record_factory) -> None:
    directory, records = dataset
    assert len(build_style_index(directory)) == 3
    with ShardWriter(directory) as writer:  # train-00003
        writer.write_many([record_factory(13, c) for c in range(8)] + [record_factory(11, 8)])
    index = build_style_index(directory)
    assert not index.loaded_from_cache
    assert len(index) == 4 and index.num_rows == 35
    assert index.rows(records[8].style).tolist() == [*range(8, 16), 34]
    assert index.rows(record_factory(13, 0).style).tolist() == list(range(26, 34))
    assert build_style_index(directory).loaded_from_cache  # the new state is cached in turn


def test_rewritten_or_removed_shard_rebuilds(dataset) -> None:
    directory, _ = dataset
    build_style_index(directory)
    os.remove(directory / shard_name(2))
    index = build_style_index(directory)
    assert not index.loaded_from_cache and index.num_rows == 20
    shard = directory / shard_name(1)
    stat = shard.stat()
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # "touched"
    assert not build_style_index(directory).loaded_from_cache


def test_corrupt_cache_is_ignored_and_replaced(dataset) -> None:
    directory, _ = dataset
    (directory / INDEX_CACHE_NAME).write_bytes(b"garbage, not parquet")
    index = build_style_index(directory)
    assert not index.loaded_from_cache and len(index) == 3
    assert build_style_index(directory).loaded_from_cache


def test_unwritable_cache_location_still_returns_the_index(dataset, tmp_path) -> None:
    directory, _ = dataset
    index = build_style_index(directory, cache_path=tmp_path / "missing-dir" / "index.parquet")
    assert len(index) == 3 and not index.loaded_from_cache


def test_official_shards_take_style_ids_from_row_ids(tmp_path, record_factory) -> None:
    records = [record_factory(s, c) for s in (7, 3) for c in range(8)]
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table(
        {
            "id": [r.id for r in records],
            "image": pa.array([{"bytes": r.image, "path": None} for r in records], image_type),
            "content": [r.content for r in records],
            "style": [r.style for r in records],
        }
    )
    pq.write_table(table, tmp_path / shard_name(0))
    index = build_style_index(tmp_path)
    assert index.style_ids == [7, 3]
    assert index.rows(records[8].style).tolist() == list(range(8, 16))


def test_table_round_trip_and_consistency_check(dataset) -> None:
    directory, _ = dataset
    index = build_style_index(directory, cache=False)
    again = StyleIndex.from_table(index.to_table())
    assert again.styles == index.styles and np.array_equal(again.order, index.order)
    with pytest.raises(ValueError, match="inconsistent"):
        StyleIndex(styles=["a"], style_ids=[None], offsets=np.array([0, 3]), order=np.array([0, 1]))
