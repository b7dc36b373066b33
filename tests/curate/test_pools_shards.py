"""Ingest from Parquet shards (MegaStyle layout and generic HF-style) and WebDataset tar shards."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from megastyle.curate.pools import PoolSpec, detect_kind, iter_pool, read_pool
from megastyle.data import StyleRecord, encode_png, write_shard
from megastyle.testing import random_images


def png(seed: int) -> bytes:
    return encode_png(random_images(1, (8, 8), seed=seed)[0])


def megastyle_shard(directory: Path, n: int = 4) -> Path:
    records = [
        StyleRecord(id=f"s{i // 2}_c{i}", image=png(i), style=f"style {i // 2}", content=f"content {i}")
        for i in range(n)
    ]
    directory.mkdir(parents=True, exist_ok=True)
    return write_shard(directory / "train-00000.parquet", records, row_group_size=2)


def test_megastyle_shards_via_shard_reader_with_role_caption(tmp_path: Path) -> None:
    megastyle_shard(tmp_path / "mega")
    style_items, rejects = read_pool(PoolSpec(path=tmp_path / "mega", role="style"))
    assert rejects == []
    assert [(i.id, i.caption) for i in style_items][:2] == [
        ("mega/train-00000/s0_c0", "style 0"),
        ("mega/train-00000/s0_c1", "style 0"),
    ]
    content_items, _ = read_pool(PoolSpec(path=tmp_path / "mega", role="content", name="c"))
    assert [i.caption for i in content_items] == ["content 0", "content 1", "content 2", "content 3"]
    assert content_items[3].id == "c/train-00000/s1_c3"
    assert content_items[3].read_bytes() == png(3) and content_items[3].load_image().size == (8, 8)
    one_file = read_pool(PoolSpec(path=tmp_path / "mega" / "train-00000.parquet"))[0]
    assert one_file[0].id == "train-00000/s0_c0"


def test_generic_parquet_struct_and_binary_columns(tmp_path: Path) -> None:
    (tmp_path / "ext.png").write_bytes(png(7))
    struct = pa.table(
        {
            "img": [
                {"bytes": png(1), "path": None},
                {"bytes": None, "path": "ext.png"},
                {"bytes": b"", "path": None},
                {"bytes": None, "path": "missing.png"},
                None,
            ],
            "text": ["a fox", "external file", "zero", "gone", "null image"],
        }
    )
    pq.write_table(struct, tmp_path / "struct.parquet")
    items, rejects = read_pool(PoolSpec(path=tmp_path / "struct.parquet", image_column="img"))
    assert [(i.id, i.caption) for i in items] == [("struct/0", "a fox"), ("struct/1", "external file")]
    assert items[0].read_bytes() == png(1) and items[1].path == str(tmp_path / "ext.png")
    causes = {r.item: r.cause for r in rejects}
    assert "zero-byte" in causes["struct/2"] and "missing image file" in causes["struct/3"]
    assert "no image" in causes["struct/4"]

    binary = pa.table({"image": [png(2), png(3)], "prompt": ["", "a boat"], "id": ["k1", "k2"]})
    pq.write_table(binary, tmp_path / "bin.parquet")
    items, rejects = read_pool(PoolSpec(path=tmp_path / "bin.parquet", caption_columns=("prompt",)))
    assert [(i.id, i.caption) for i in items] == [("bin/k2", "a boat")]
    assert [r.item for r in rejects] == ["bin/k1"] and "empty caption" in rejects[0].cause

    pq.write_table(pa.table({"image": ["not bytes"]}), tmp_path / "strcol.parquet")
    _, rejects = read_pool(PoolSpec(path=tmp_path / "strcol.parquet"))
    assert len(rejects) == 1 and "expected struct" in rejects[0].cause


def test_a_broken_parquet_file_is_rejected_and_the_rest_is_read(tmp_path: Path) -> None:
    pool = tmp_path / "shards"
    pool.mkdir()
    pq.write_table(pa.table({"image": [png(1)], "caption": ["ok"]}), pool / "a.parquet")
    (pool / "b.parquet").write_bytes(b"PAR1 this is not parquet")
    pq.write_table(pa.table({"image": [png(2)], "caption": ["also ok"]}), pool / "c.parquet")
    assert detect_kind(pool) == "parquet"
    items, rejects = read_pool(PoolSpec(path=pool))
    assert [i.id for i in items] == ["shards/a/0", "shards/c/0"]
    assert [r.item for r in rejects] == ["shards/b"] and "unreadable Parquet" in rejects[0].cause


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_tar(path: Path, samples: list[tuple[str, dict[str, bytes]]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for key, members in samples:
            for ext, data in members.items():
                add(tar, f"{key}.{ext}", data)
    return path


def test_webdataset_tar_samples_captions_and_rejects(tmp_path: Path) -> None:
    shard = make_tar(
        tmp_path / "wds" / "shard-000.tar",
        [
            ("dir/0001", {"jpg": png(1), "txt": b"a lighthouse"}),
            ("dir/0002", {"png": png(2), "json": json.dumps({"caption": "a bridge"}).encode()}),
            ("dir/0003", {"webp": png(3)}),
            ("dir/0004", {"txt": b"caption without image"}),
            ("dir/0005", {"jpg": b"", "txt": b"zero"}),
            ("dir/0006", {"jpg": png(6), "json": json.dumps({"caption": 7}).encode()}),
            ("dir/0007", {"jpg": png(7), "json": b"{nope"}),
            ("dir/0008", {"jpg": png(8), "txt": b"\xff\xfe"}),
            ("dir/0001", {"cls": b"3"}),  # a key that comes back later would duplicate an id
        ],
    )
    make_tar(tmp_path / "wds" / "shard-001.tar", [("k", {"jpg": png(9), "txt": b"second shard"})])
    assert detect_kind(tmp_path / "wds") == "webdataset"
    items, rejects = read_pool(PoolSpec(path=tmp_path / "wds"))
    assert [(i.id, i.caption) for i in items] == [
        ("wds/shard-000/dir/0001", "a lighthouse"),
        ("wds/shard-000/dir/0002", "a bridge"),
        ("wds/shard-000/dir/0003", None),
        ("wds/shard-001/k", "second shard"),
    ]
    assert items[0].read_bytes() == png(1) and items[0].source == str(shard)
    causes = {r.item.rsplit("/", 1)[1]: r.cause for r in rejects}
    assert "no image member" in causes["0004"] and "zero-byte" in causes["0005"]
    assert "not text (int)" in causes["0006"] and "not valid JSON" in causes["0007"]
    assert "not UTF-8" in causes["0008"]
    assert "repeats an earlier key" in causes["0001"] and len(rejects) == 6
    single = read_pool(PoolSpec(path=shard, limit=1))[0]
    assert [i.id for i in single] == ["shard-000/dir/0001"]


def test_truncated_tar_keeps_whole_samples_and_goes_on(tmp_path: Path) -> None:
    samples = [(f"{i:04d}", {"png": png(i) * 40, "txt": f"caption {i}".encode()}) for i in range(4)]
    full = make_tar(tmp_path / "full.tar", samples).read_bytes()
    pool = tmp_path / "pool"
    pool.mkdir()
    (pool / "a.tar").write_bytes(full[: len(full) // 2])  # cut inside the third sample's image
    make_tar(pool / "b.tar", [("z", {"png": png(99), "txt": b"after the break"})])
    seen = []
    items = list(iter_pool(PoolSpec(path=pool), on_reject=seen.append))
    ids = [i.id for i in items]
    assert ids[-1] == "pool/b/z"
    assert ids[:2] == ["pool/a/0000", "pool/a/0001"]
    assert any(r.item == "pool/a" and "tar stream broken" in r.cause for r in seen)
    assert any(r.item == "pool/a/0002" and "unreadable tar member" in r.cause for r in seen)
    broken = [i for i in items if i.id.startswith("pool/a/")]
    assert all(len(i.read_bytes()) == 40 * len(png(int(i.id[-4:]))) for i in broken)


def test_stream_shuffle_is_seeded_and_complete(tmp_path: Path) -> None:
    for s in range(3):
        make_tar(tmp_path / "t" / f"{s}.tar", [(f"{s}-{k}", {"png": png(k), "txt": b"c"}) for k in range(10)])
    plain = [i.id for i in iter_pool(PoolSpec(path=tmp_path / "t"))]
    spec = PoolSpec(path=tmp_path / "t", shuffle=True, seed=3, shuffle_buffer=8)
    shuffled = [i.id for i in iter_pool(spec)]
    assert sorted(shuffled) == sorted(plain) and shuffled != plain
    assert shuffled == [i.id for i in iter_pool(spec)]
    assert shuffled != [i.id for i in iter_pool(spec.model_copy(update={"seed": 4}))]


@pytest.mark.parametrize("kind", ["parquet", "webdataset"])
def test_explicit_kind_on_a_single_file(tmp_path: Path, kind: str) -> None:
    if kind == "parquet":
        path = tmp_path / "data.bin"
        pq.write_table(pa.table({"image": [png(1)], "text": ["x"]}), path)
    else:
        path = make_tar(tmp_path / "data.bin", [("a", {"png": png(1), "txt": b"x"})])
    items, rejects = read_pool(PoolSpec(path=path, kind=kind))  # type: ignore[arg-type]
    assert len(items) == 1 and items[0].caption == "x" and rejects == []
