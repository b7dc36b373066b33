"""ShardWriter: layout (names, rows per shard, row groups), validation with rejects, atomicity."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from megastyle.data import (
    ShardReader,
    ShardWriter,
    StyleRecord,
    cleanup_temp_files,
    decode_image,
    list_shards,
    probe_image,
    shard_index,
    shard_name,
    write_shard,
)


def _records(record_factory, styles: int, per_style: int = 8) -> list[StyleRecord]:
    return [record_factory(s, c) for s in range(styles) for c in range(per_style)]


def _row_groups(path) -> list[int]:
    meta = pq.read_metadata(path)
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def test_shard_names() -> None:
    assert shard_name(0) == "train-00000.parquet"
    assert shard_name(123456) == "train-123456.parquet"
    assert shard_index("x/train-00042.parquet") == 42
    assert shard_index(".train-00042.parquet.abc.tmp") is None
    assert shard_index("train-1.parquet") is None


def test_round_trip_all_columns(tmp_path, record_factory) -> None:
    records = _records(record_factory, styles=3, per_style=4)  # 12 rows
    with ShardWriter(tmp_path, rows_per_shard=5, row_group_size=2) as writer:
        assert writer.write_many(records) == 12
    assert [p.name for p in list_shards(tmp_path)] == [shard_name(i) for i in range(3)]
    assert [_row_groups(p) for p in list_shards(tmp_path)] == [[2, 2, 1], [2, 2, 1], [2]]
    assert writer.rows_committed == 12 and writer.rejects == []
    reader = ShardReader(tmp_path)
    assert len(reader) == 12 and reader.shard_rows == [5, 5, 2]
    assert list(reader) == records  # every column, image bytes included
    for i in (0, 4, 5, 11, -1):
        assert reader[i] == records[i]
        assert reader[i].image == records[i].image


def test_default_layout_is_row_groups_of_100(tmp_path, record_factory) -> None:
    record = record_factory(0, 0)
    with ShardWriter(tmp_path, rows_per_shard=250) as writer:
        for i in range(260):
            writer.write(StyleRecord(**{**record.__dict__, "id": f"s0_c{i}"}))
    shards = list_shards(tmp_path)
    assert [_row_groups(p) for p in shards] == [[100, 100, 50], [10]]
    assert pq.read_metadata(shards[0]).num_rows == 250
    assert pq.read_schema(shards[0]).names[:4] == ["id", "image", "content", "style"]
    assert writer.rows_per_shard == 250 and ShardWriter(tmp_path / "d").rows_per_shard == 80_000


def test_empty_writer_writes_nothing(tmp_path) -> None:
    with ShardWriter(tmp_path):
        pass
    assert list(tmp_path.iterdir()) == []


def test_second_writer_appends_and_refuses_to_clobber(tmp_path, record_factory) -> None:
    with ShardWriter(tmp_path, rows_per_shard=4) as writer:
        writer.write_many(_records(record_factory, 1, 4))
    with ShardWriter(tmp_path, rows_per_shard=4) as writer:
        writer.write_many(_records(record_factory, 1, 2))
    assert [p.name for p in list_shards(tmp_path)] == [shard_name(0), shard_name(1)]
    with pytest.raises(FileExistsError), ShardWriter(tmp_path, start_index=0) as writer:
        writer.write(record_factory(9, 9))
    assert len(ShardReader(tmp_path)) == 6
    assert not cleanup_temp_files(tmp_path)  # the refused writer left no temp file


def test_write_after_close_raises(tmp_path, record_factory) -> None:
    writer = ShardWriter(tmp_path)
    writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        writer.write(record_factory(0, 0))


def test_exception_inside_with_leaves_only_finished_shards(tmp_path, record_factory) -> None:
    records = _records(record_factory, styles=2, per_style=4)  # 8 rows
    with (
        pytest.raises(KeyboardInterrupt),
        ShardWriter(tmp_path, rows_per_shard=3, row_group_size=2) as writer,
    ):
        for record in records[:7]:  # shards 0 and 1 finish, shard 2 holds one row
            writer.write(record)
        raise KeyboardInterrupt
    assert [p.name for p in list_shards(tmp_path)] == [shard_name(0), shard_name(1)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [shard_name(0), shard_name(1)]  # no temp left
    assert [r.id for r in ShardReader(tmp_path)] == [r.id for r in records[:6]]


def test_hard_crash_temp_file_is_never_listed(tmp_path, record_factory) -> None:
    writer = ShardWriter(tmp_path, rows_per_shard=100, row_group_size=2)
    for record in _records(record_factory, 1, 5):
        writer.write(record)  # two row groups already on disk in the temp file
    # Simulated kill -9: the writer is never closed or aborted.
    leftovers = [p for p in tmp_path.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".train-00000.parquet.")
    assert leftovers[0].stat().st_size > 0
    assert list_shards(tmp_path) == []
    assert len(ShardReader(tmp_path)) == 0
    assert cleanup_temp_files(tmp_path) == leftovers
    assert list(tmp_path.iterdir()) == []
    writer._file = None  # let the abandoned writer be garbage-collected quietly


def _save(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _odd_batch(record_factory, huge_png: bytes) -> tuple[list[StyleRecord], set[str]]:
    """A batch mixing good PNGs, three broken images and four odd-but-valid modes."""
    base = record_factory(0, 0)

    def rec(content_id: int, image: bytes) -> StyleRecord:
        return StyleRecord(**{**base.__dict__, "id": f"s0_c{content_id}", "image": image})

    good = base.image
    palette = Image.new("P", (16, 16), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.putpixel((3, 3), 1)
    palette_bytes = io.BytesIO()
    palette.save(palette_bytes, format="PNG", transparency=0)
    batch = [
        rec(0, good),
        rec(1, b"\x89PNG\r\n\x1a\n garbage"),  # corrupt
        rec(2, good[: len(good) // 2]),  # truncated
        rec(3, huge_png),  # decompression bomb header
        rec(4, _save(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG")),
        rec(5, palette_bytes.getvalue()),
        rec(6, _save(Image.new("RGBA", (16, 16), (0, 0, 255, 0)), "PNG")),
        rec(7, _save(Image.fromarray(np.full((16, 16), 65535, dtype=np.uint16)), "PNG")),
        rec(8, good),
    ]
    return batch, {"s0_c1", "s0_c2", "s0_c3"}


def test_validating_writer_collects_rejects_and_writes_the_rest(tmp_path, record_factory, huge_png) -> None:
    batch, bad = _odd_batch(record_factory, huge_png)
    with ShardWriter(tmp_path, validate=True, normalize_png=True, write_rejects=True) as writer:
        accepted = writer.write_many(batch)
    assert accepted == len(batch) - 3
    assert {r.item for r in writer.rejects} == bad
    causes = {r.item: r.cause for r in writer.rejects}
    assert "exceeds the limit" in causes["s0_c3"] or "exceeds limit" in causes["s0_c3"]
    lines = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [(x["item"], x["cause"]) for x in lines] == [(r.item, r.cause) for r in writer.rejects]

    rows = {r.id: r for r in ShardReader(tmp_path)}
    assert sorted(rows) == sorted(r.id for r in batch if r.id not in bad)
    assert rows["s0_c0"].image == batch[0].image  # already an RGB PNG: stored byte for byte
    for rid in ("s0_c4", "s0_c5", "s0_c6", "s0_c7"):  # odd modes re-encoded as RGB PNG
        info = probe_image(rows[rid].image)
        assert (info.format, info.mode, info.width) == ("PNG", "RGB", 16)
    red = decode_image(rows["s0_c4"].image).getpixel((8, 8))
    assert red[0] > 240 and red[1] < 15 and red[2] < 15
    assert decode_image(rows["s0_c5"].image).getpixel((0, 0)) == (255, 255, 255)
    assert decode_image(rows["s0_c5"].image).getpixel((3, 3)) == (255, 0, 0)
    assert decode_image(rows["s0_c6"].image).getpixel((1, 1)) == (255, 255, 255)
    assert decode_image(rows["s0_c7"].image).getpixel((1, 1)) == (255, 255, 255)


def test_validation_rejects_wrong_size_and_bad_fields(tmp_path, record_factory) -> None:
    ok = record_factory(1, 1, size=(32, 32))
    small = record_factory(1, 2, size=(16, 16))
    no_id = StyleRecord(**{**ok.__dict__, "id": ""})
    with ShardWriter(tmp_path, validate=True, expected_size=(32, 32)) as writer:
        assert [writer.write(r) for r in (ok, small, no_id)] == [True, False, False]
    assert [(r.item, r.cause) for r in writer.rejects] == [
        ("s1_c2", "image is 16x16, expected 32x32"),
        ("<unknown>", "id must be a non-empty string, got ''"),
    ]
    assert not (tmp_path / "rejects.jsonl").exists()  # not asked for
    assert [r.id for r in ShardReader(tmp_path)] == ["s1_c1"]


def test_without_validation_bad_fields_raise_and_images_pass_unchecked(tmp_path, record_factory) -> None:
    broken = StyleRecord(**{**record_factory(0, 0).__dict__, "image": b"not an image"})
    with ShardWriter(tmp_path) as writer:
        assert writer.write(broken)  # no decoding without validate=True
        with pytest.raises(ValueError, match="seed"):
            writer.write(StyleRecord(**{**broken.__dict__, "seed": -3}))
    assert ShardReader(tmp_path)[0].image == b"not an image"


def test_write_shard_is_atomic_and_uses_row_groups(tmp_path, record_factory) -> None:
    records = _records(record_factory, 1, 5)
    path = write_shard(tmp_path / shard_name(3), records, row_group_size=2)
    assert _row_groups(path) == [2, 2, 1]
    assert list(ShardReader(path)) == records

    def exploding():
        yield records[0]
        raise RuntimeError("generator died")

    with pytest.raises(RuntimeError):
        write_shard(tmp_path / shard_name(4), exploding())
    assert sorted(p.name for p in tmp_path.iterdir()) == [shard_name(3)]
