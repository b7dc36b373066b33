"""ShardReader: official four-column shards, random access by row group, column subsets."""

from __future__ import annotations

import pickle

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from megastyle.data import (
    EXTRA_COLUMNS,
    ShardFormatError,
    ShardReader,
    ShardWriter,
    arrow_schema,
    shard_name,
    write_shard,
)


def _official_table(record_factory, style_ids: range, *, per_style: int = 8) -> pa.Table:
    """The release layout written with plain pyarrow: id, image{bytes,path}, content, style only."""
    records = [record_factory(s, c) for s in style_ids for c in range(per_style)]
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    return pa.table(
        {
            "id": [r.id for r in records],
            "image": pa.array([{"bytes": r.image, "path": None} for r in records], image_type),
            "content": [r.content for r in records],
            "style": [r.style for r in records],
        }
    )


def test_official_four_column_shard_reads(tmp_path, record_factory) -> None:
    table = _official_table(record_factory, range(3))
    pq.write_table(table, tmp_path / shard_name(0), row_group_size=100)
    reader = ShardReader(tmp_path)
    assert len(reader) == 24
    record = reader[9]
    expected = record_factory(1, 1)
    assert (record.id, record.image, record.style, record.content) == (
        expected.id,
        expected.image,
        expected.style,
        expected.content,
    )
    assert all(getattr(record, name) is None for name in EXTRA_COLUMNS)
    assert record.image_path is None
    assert [r.id for r in reader] == table["id"].to_pylist()
    batch = next(reader.iter_batches(columns=["id", "seed"]))
    assert batch.schema.names == ["id", "seed"] and batch["seed"].null_count == batch.num_rows == 24
    only_ours = list(reader.iter_batches(columns=["backend"]))  # no stored column at all
    assert sum(b.num_rows for b in only_ours) == 24 and only_ours[0]["backend"].null_count == 24
    assert reader.get_row(23, columns=["seed"]) == {"seed": None}


def test_official_and_our_shards_mix_in_one_directory(tmp_path, record_factory) -> None:
    pq.write_table(_official_table(record_factory, range(2)), tmp_path / shard_name(0))
    with ShardWriter(tmp_path) as writer:  # continues at train-00001
        writer.write_many([record_factory(5, c) for c in range(8)])
    reader = ShardReader(tmp_path)
    assert reader.shard_rows == [16, 8]
    assert reader[0].seed is None and reader[16].seed == record_factory(5, 0).seed
    table = reader.read_table(["id", "style_id"])
    assert table.schema == arrow_schema(["id", "style_id"])
    assert table["style_id"].to_pylist() == [None] * 16 + [5] * 8


def test_plain_binary_image_and_large_string_columns_are_accepted(tmp_path, record_factory) -> None:
    records = [record_factory(0, c) for c in range(3)]
    table = pa.table(
        {
            "id": pa.array([r.id for r in records], pa.large_string()),
            "image": pa.array([r.image for r in records], pa.large_binary()),
            "content": [r.content for r in records],
            "style": [r.style for r in records],
            "style_id": pa.array([0, 0, 0], pa.int32()),
            "unrelated": [1, 2, 3],
        }
    )
    path = tmp_path / "x.parquet"
    pq.write_table(table, path)
    reader = ShardReader(path)
    assert [r.image for r in reader] == [r.image for r in records]
    assert reader[2].id == "s0_c2" and reader[2].style_id == 0 and reader[2].image_path is None


def test_missing_official_column_is_a_format_error(tmp_path) -> None:
    pq.write_table(pa.table({"id": ["s0_c0"], "style": ["x"]}), tmp_path / shard_name(0))
    with pytest.raises(ShardFormatError, match=r"missing required columns \['image', 'content'\]"):
        ShardReader(tmp_path)
    (tmp_path / shard_name(1)).write_bytes(b"not parquet at all")
    with pytest.raises(ShardFormatError, match="not a readable Parquet file"):
        ShardReader(tmp_path / shard_name(1))


@pytest.fixture
def three_shards(tmp_path, record_factory):
    records = [record_factory(s, c) for s in range(7) for c in range(8)]  # 56 rows
    with ShardWriter(tmp_path, rows_per_shard=20, row_group_size=6) as writer:
        writer.write_many(records)
    return tmp_path, records


def test_locate_maps_global_rows_to_row_groups(three_shards) -> None:
    directory, _ = three_shards
    reader = ShardReader(directory)
    assert reader.shard_rows == [20, 20, 16]
    assert reader.locate(0) == (0, 0, 0)
    assert reader.locate(19) == (0, 3, 1)  # groups of 6, 6, 6, 2
    assert reader.locate(20) == (1, 0, 0)
    assert reader.locate(45) == (2, 0, 5)
    assert reader.locate(-1) == (2, 2, 3)  # 16 rows: 6, 6, 4
    with pytest.raises(IndexError):
        reader.locate(56)
    with pytest.raises(TypeError):
        reader.locate(1.0)  # type: ignore[arg-type]


def test_random_access_reads_only_the_needed_row_group(three_shards, monkeypatch) -> None:
    directory, records = three_shards
    calls: list[tuple[str, int, tuple[str, ...]]] = []  # (first id, rows, columns) of each read
    original = pq.ParquetFile.read_row_group

    def spy(self, i, columns=None, **kwargs):
        table = original(self, i, columns=columns, **kwargs)
        calls.append((table["id"][0].as_py(), table.num_rows, tuple(columns or ())))
        return table

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", spy)
    reader = ShardReader(directory, cache_row_groups=0)
    for index in (47, 3, 20, 55):
        assert reader[index] == records[index]
    # Row groups of 6 inside shards of 20: row 47 is shard 2 group 1 (rows 46..51), and so on.
    assert [(first, n) for first, n, _ in calls] == [
        (records[46].id, 6),
        (records[0].id, 6),
        (records[20].id, 6),
        (records[52].id, 4),
    ]
    calls.clear()
    row = reader.get_row(33, columns=["id", "style"])
    assert row == {"id": records[33].id, "style": records[33].style}
    assert calls == [(records[32].id, 6, ("id", "style"))]  # image bytes were not read


def test_row_group_cache_serves_neighbours(three_shards, monkeypatch) -> None:
    directory, records = three_shards
    reader = ShardReader(directory)
    reads = []
    original = pq.ParquetFile.read_row_group
    monkeypatch.setattr(
        pq.ParquetFile, "read_row_group", lambda self, i, **kw: reads.append(i) or original(self, i, **kw)
    )
    assert [reader[i].id for i in range(6)] == [r.id for r in records[:6]]
    assert reads == [0]


def test_iteration_subsets_and_pickling(three_shards) -> None:
    directory, records = three_shards
    reader = ShardReader(directory, columns=["id", "content"])
    rows = list(reader.iter_rows())
    assert rows == [{"id": r.id, "content": r.content} for r in records]
    batches = list(reader.iter_batches(batch_size=7))
    assert sum(b.num_rows for b in batches) == 56 and max(b.num_rows for b in batches) <= 7
    assert reader.read_shard(1, ["seed"])["seed"].to_pylist() == [r.seed for r in records[20:40]]
    clone = pickle.loads(pickle.dumps(reader))
    assert clone[30] == records[30] and len(clone) == 56
    with pytest.raises(ValueError, match="unknown columns"):
        ShardReader(directory, columns=["id", "pixels"])


def test_reader_over_empty_directory(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        ShardReader(tmp_path / "nowhere")
    reader = ShardReader(tmp_path)
    assert len(reader) == 0 and list(reader) == []
    assert reader.read_table(["id"]).num_rows == 0
    with pytest.raises(IndexError):
        reader[0]


def test_empty_shard_between_full_ones_is_skipped(tmp_path, record_factory) -> None:
    write_shard(tmp_path / shard_name(0), [record_factory(0, c) for c in range(3)])
    write_shard(tmp_path / shard_name(1), [])  # every item of that slice was rejected
    write_shard(tmp_path / shard_name(2), [record_factory(1, c) for c in range(2)])
    reader = ShardReader(tmp_path)
    assert reader.shard_rows == [3, 0, 2]
    assert reader.locate(3) == (2, 0, 0)
    assert [reader[i].id for i in range(5)] == ["s0_c0", "s0_c1", "s0_c2", "s1_c0", "s1_c1"]
    assert [r.id for r in reader][3:] == ["s1_c0", "s1_c1"]
