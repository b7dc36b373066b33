"""Pools of Parquet shards and plain tars are ingested as references: small tables, same bytes on read."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from megastyle.curate.items import PoolItem
from megastyle.curate.members import read_member
from megastyle.curate.pools import PoolSpec, read_pool
from megastyle.curate.stages.ingest import items_from_table, items_to_table
from megastyle.data import ImageDecodeError, encode_png
from megastyle.testing import random_images


def png(seed: int) -> bytes:
    return encode_png(random_images(1, (16, 16), seed=seed)[0])


def _tar(path: Path, samples: dict[str, bytes], compress: bool = False) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in samples.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(buffer.getvalue()) if compress else buffer.getvalue())
    return path


def test_parquet_items_are_row_references_that_read_back_the_same_bytes(tmp_path):
    images = [png(i) for i in range(7)]
    table = pa.table(
        {"image": [{"bytes": b, "path": None} for b in images], "text": [f"t{i}" for i in range(7)]}
    )
    pq.write_table(table, tmp_path / "pool.parquet", row_group_size=3)  # rows span three row groups
    items, rejects = read_pool(PoolSpec(path=tmp_path / "pool.parquet"))
    assert rejects == [] and all(i.image_bytes is None and i.member for i in items)
    assert [i.read_bytes() for i in items] == images
    # The ingest table holds references only, and they survive the round trip.
    stored = items_to_table(items)
    assert stored.column("image").null_count == len(items)
    assert [i.read_bytes() for i in items_from_table(stored)] == images


def test_plain_tar_members_are_offsets_and_compressed_tars_keep_bytes(tmp_path):
    samples = {"a.png": png(1), "a.txt": b"one", "b.png": png(2), "b.txt": b"two"}
    plain, _ = read_pool(PoolSpec(path=_tar(tmp_path / "plain" / "s.tar", samples)))
    assert [i.member is not None and i.image_bytes is None for i in plain] == [True, True]
    assert [i.read_bytes() for i in plain] == [png(1), png(2)]
    packed, _ = read_pool(PoolSpec(path=_tar(tmp_path / "gz" / "s.tar.gz", samples, compress=True)))
    assert [i.image_bytes for i in packed] == [png(1), png(2)] and all(i.member is None for i in packed)


def test_a_reference_that_no_longer_fits_its_file_fails_naming_the_item(tmp_path):
    tar = _tar(tmp_path / "s.tar", {"a.png": png(3)})
    (item,) = read_pool(PoolSpec(path=tar))[0]
    tar.write_bytes(tar.read_bytes()[:600])  # the file shrank under the run
    with pytest.raises(ValueError, match="cut short"):
        item.read_bytes()
    garbage = PoolItem("pool/x", "src", path=str(tar), member="tar:0:100")  # a tar header, not an image
    with pytest.raises(ImageDecodeError, match="pool/x"):
        garbage.load_image()
    gone = PoolItem("pool/y", "src", path=str(tmp_path / "gone.tar"), member="tar:0:10")
    with pytest.raises(ValueError, match=r"pool/y.*cannot read"):
        gone.load_image()
    pq.write_table(pa.table({"image": [png(4)]}), tmp_path / "p.parquet")
    with pytest.raises(ValueError, match="outside the file"):
        read_member(str(tmp_path / "p.parquet"), "parquet:99:image")
    with pytest.raises(ValueError, match="unknown member reference"):
        read_member(str(tar), "zip:1:2")
