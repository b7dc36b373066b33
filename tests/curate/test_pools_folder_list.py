"""Ingest from image folders (sidecars, HF metadata files) and image+caption list files."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from megastyle.curate.pools import PoolSpec, detect_kind, iter_pool, iter_pools, read_pool
from megastyle.data import Reject
from megastyle.testing import random_images


def png_bytes(seed: int = 0, size: tuple[int, int] = (8, 8)) -> bytes:
    buffer = io.BytesIO()
    random_images(1, size, seed=seed)[0].save(buffer, format="PNG")
    return buffer.getvalue()


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(data, bytes) else path.write_text)(data)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "wikiart"
    write(root / "a.png", png_bytes(1))
    write(root / "a.txt", "  an oil painting  \n")
    write(root / "B.JPG", png_bytes(2))  # extension match is case-insensitive (bytes are PNG: never decoded)
    write(root / "sub" / "deep" / "c.webp", png_bytes(3))
    write(root / "sub" / "empty.png", b"")
    write(root / "sub" / "empty_caption.png", png_bytes(4))
    write(root / "sub" / "empty_caption.txt", "   ")
    write(root / "sub" / "latin1.png", png_bytes(5))
    write(root / "sub" / "latin1.txt", "caf\xe9".encode("latin-1"))
    write(root / "notes.md", "not an image")
    write(root / ".hidden" / "x.png", png_bytes(6))
    return root


def test_folder_is_recursive_with_sidecars_and_stable_ids(folder: Path) -> None:
    items, rejects = read_pool(PoolSpec(path=folder))
    assert [i.id for i in items] == ["wikiart/B.JPG", "wikiart/a.png", "wikiart/sub/deep/c.webp"]
    by_id = {i.id: i for i in items}
    assert by_id["wikiart/a.png"].caption == "an oil painting"
    assert by_id["wikiart/B.JPG"].caption is None
    assert all(i.image_bytes is None and i.path is not None for i in items)  # paths only: lazy
    assert all(i.source == str(folder) for i in items)
    assert by_id["wikiart/sub/deep/c.webp"].load_image().size == (8, 8)
    causes = {r.item: r.cause for r in rejects}
    assert set(causes) == {"wikiart/sub/empty.png", "wikiart/sub/empty_caption.png", "wikiart/sub/latin1.png"}
    assert "zero-byte" in causes["wikiart/sub/empty.png"]
    assert "empty caption" in causes["wikiart/sub/empty_caption.png"]
    assert "not UTF-8" in causes["wikiart/sub/latin1.png"]
    assert [i.id for i in read_pool(PoolSpec(path=folder))[0]] == [i.id for i in items]


def test_folder_metadata_jsonl_and_csv(tmp_path: Path) -> None:
    root = tmp_path / "pool"
    for name in ("x.png", "y.png", "z.png", "sub/w.png", "n.png"):
        write(root / name, png_bytes(len(name)))
    write(root / "y.txt", "sidecar loses to metadata")
    rows = [
        {"file_name": "x.png", "text": "a meadow"},
        {"file_name": "y.png", "text": "from metadata"},
        {"file_name": "sub/w.png", "text": "nested"},
        {"file_name": "n.png", "text": 42},
        {"file_name": "gone.png", "text": "missing"},
    ]
    write(root / "metadata.jsonl", "".join(json.dumps(r) + "\n" for r in rows) + "{broken\n")
    items, rejects = read_pool(PoolSpec(path=root, name="p"))
    captions = {i.id: i.caption for i in items}
    assert captions == {
        "p/x.png": "a meadow",
        "p/y.png": "from metadata",
        "p/z.png": None,
        "p/sub/w.png": "nested",
    }
    causes = {r.item: r.cause for r in rejects}
    assert "not text (int)" in causes["p/n.png"]
    assert any("invalid JSON" in c for c in causes.values())
    assert any("missing image" in c and "gone.png" in c for c in causes.values())

    csv_root = tmp_path / "csvpool"
    write(csv_root / "q.png", png_bytes(9))
    write(csv_root / "r.png", png_bytes(8))
    write(csv_root / "captions.csv", "file_name,prompt\nq.png,a red kite\nr.png,\n")
    items, rejects = read_pool(PoolSpec(path=csv_root, caption_columns=("prompt",)))
    assert [(i.id, i.caption) for i in items] == [("csvpool/q.png", "a red kite")]
    assert [r.item for r in rejects] == ["csvpool/r.png"] and "empty caption" in rejects[0].cause


def test_require_caption_rejects_uncaptioned_images(folder: Path) -> None:
    items, rejects = read_pool(PoolSpec(path=folder, require_caption=True))
    assert [i.id for i in items] == ["wikiart/a.png"]
    assert any(r.item == "wikiart/B.JPG" and "no caption" in r.cause for r in rejects)


def test_list_files_jsonl_and_csv(tmp_path: Path) -> None:
    write(tmp_path / "imgs" / "one.png", png_bytes(1))
    write(tmp_path / "imgs" / "two.png", png_bytes(2))
    write(tmp_path / "imgs" / "zero.png", b"")
    lines = [
        {"image": "imgs/one.png", "caption": "a cat"},
        {"image": "imgs/one.png", "caption": "a second caption of the same image"},
        {"image": "imgs/two.png", "caption": ["not", "text"]},
        {"image": "https://example.com/x.png", "caption": "remote"},
        {"image": "imgs/missing.png", "caption": "gone"},
        {"image": "imgs/zero.png", "caption": "empty file"},
        {"caption": "no image"},
        [1, 2],
    ]
    listing = write(tmp_path / "list.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
    assert detect_kind(listing) == "list"
    items, rejects = read_pool(PoolSpec(path=listing, role="content"))
    assert [(i.id, i.caption) for i in items] == [
        ("list/imgs/one.png", "a cat"),
        ("list/imgs/one.png#2", "a second caption of the same image"),
    ]
    assert items[0].source == str(listing) and items[0].load_image().size == (8, 8)
    causes = [r.cause for r in rejects]
    assert len(rejects) == 6
    for expected in (
        "not text (list)",
        "is a URL",
        "missing image file",
        "zero-byte",
        "no image path",
        "JSON object",
    ):
        assert any(expected in c for c in causes), expected

    table = write(tmp_path / "pairs.csv", "path,text\nimgs/two.png,a dog\nimgs/one.png,\n")
    items, rejects = read_pool(PoolSpec(path=table))
    assert [(i.id, i.caption) for i in items] == [("pairs/imgs/two.png", "a dog")]
    assert len(rejects) == 1 and "empty caption" in rejects[0].cause


def test_iteration_is_lazy_and_rejects_go_to_a_callback(tmp_path: Path) -> None:
    write(tmp_path / "ok.png", png_bytes(1))
    rows = [{"image": "ok.png", "caption": "first"}, {"image": "missing.png", "caption": "second"}]
    listing = write(tmp_path / "l.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    seen: list[Reject] = []
    stream = iter_pool(PoolSpec(path=listing), on_reject=seen.append)
    assert next(stream).caption == "first"
    assert seen == []  # the bad row has not been read yet
    assert list(stream) == []
    assert [r.item for r in seen] == ["l/missing.png"]


def test_limit_shuffle_and_seed(tmp_path: Path) -> None:
    root = tmp_path / "many"
    for i in range(30):
        write(root / f"{i:02d}.png", png_bytes(i, (4, 4)))
    plain = [i.id for i in iter_pool(PoolSpec(path=root))]
    assert plain == sorted(plain) and len(plain) == 30
    shuffled = [i.id for i in iter_pool(PoolSpec(path=root, shuffle=True, seed=1))]
    assert sorted(shuffled) == plain and shuffled != plain
    assert shuffled == [i.id for i in iter_pool(PoolSpec(path=root, shuffle=True, seed=1))]
    assert shuffled != [i.id for i in iter_pool(PoolSpec(path=root, shuffle=True, seed=2))]
    assert [i.id for i in iter_pool(PoolSpec(path=root, limit=5))] == plain[:5]
    sample = [i.id for i in iter_pool(PoolSpec(path=root, limit=5, shuffle=True, seed=1))]
    assert sample == shuffled[:5]
    assert list(iter_pool(PoolSpec(path=root, limit=0))) == []


def test_kind_detection_and_clear_errors(tmp_path: Path) -> None:
    write(tmp_path / "imgs" / "a.png", png_bytes())
    write(tmp_path / "imgs" / "metadata.jsonl", "")
    assert detect_kind(tmp_path / "imgs") == "folder"
    write(tmp_path / "mixed" / "a.png", png_bytes())
    write(tmp_path / "mixed" / "deep" / "s.tar", b"")
    with pytest.raises(ValueError, match="mixes"):
        detect_kind(tmp_path / "mixed")
    assert PoolSpec(path=tmp_path / "mixed", kind="folder").resolved_kind() == "folder"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        detect_kind(tmp_path / "empty")
    with pytest.raises(ValueError, match="suffix"):
        detect_kind(write(tmp_path / "x.bin", b"1"))
    with pytest.raises(FileNotFoundError, match="nope"):
        iter_pool(PoolSpec(path=tmp_path / "nope"))
    with pytest.raises(ValueError, match="extra"):
        PoolSpec(path=tmp_path, bogus=1)  # type: ignore[call-arg]


def test_iter_pools_chains_sources_and_refuses_name_clashes(tmp_path: Path) -> None:
    write(tmp_path / "a" / "pool" / "1.png", png_bytes(1))
    write(tmp_path / "b" / "pool" / "1.png", png_bytes(2))
    specs = [PoolSpec(path=tmp_path / "a" / "pool"), PoolSpec(path=tmp_path / "b" / "pool")]
    with pytest.raises(ValueError, match="distinct name"):
        list(iter_pools(specs))
    named = [specs[0], PoolSpec(path=tmp_path / "b" / "pool", name="other")]
    assert [i.id for i in iter_pools(named)] == ["pool/1.png", "other/1.png"]
    assert Image.open(io.BytesIO(Path(next(iter_pools(named)).path or "").read_bytes())).size == (8, 8)
