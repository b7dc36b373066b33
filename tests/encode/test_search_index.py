"""Style search: FAISS and exact indexes over an embedded collection, the HTML page, ``megastyle search``."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from megastyle.curate.generate import plan_images, run_generate
from megastyle.data import ShardReader
from megastyle.encode import search as search_module
from megastyle.encode.embed import EmbeddingSet, embed_collection
from megastyle.encode.model import StyleEncoder
from megastyle.encode.search import SearchIndex, build_index, write_search_html
from megastyle.prompts import sample_content_prompts, sample_style_prompts
from megastyle.testing import tiny_model_dir


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("search") / "shards"
    plan = plan_images(sample_style_prompts(8, seed=0), sample_content_prompts(8, seed=1), 4, seed=0)
    run_generate(plan, out, size=32, shard_size=12, row_group_size=4, show_progress=False)
    return out


@pytest.fixture(scope="module")
def embedded(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    encoder = StyleEncoder.from_pretrained(tiny_model_dir("siglip"))
    out = tmp_path_factory.mktemp("emb") / "collection.safetensors"
    embed_collection(encoder, shards, out_path=out, progress=False)
    return out


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_own_image_comes_first(embedded: Path, kind: str) -> None:
    collection = EmbeddingSet.load(embedded)
    index = build_index(collection, kind=kind)
    assert index.backend == "faiss" and len(index) == 32
    picks = [0, 7, 13, 31]
    hits = index.search(collection.embeddings[picks], k=5)
    for pick, row in zip(picks, hits, strict=True):
        assert row[0].id == collection.items[pick].id
        assert row[0].score == pytest.approx(1.0, abs=1e-5)
        assert [h.rank for h in row] == [1, 2, 3, 4, 5]
        assert all(a.score >= b.score for a, b in itertools.pairwise(row))


def test_numpy_fallback_matches_faiss_and_round_trips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(200, 16)).astype(np.float32)
    ids = [f"item{i}" for i in range(200)]
    exact = build_index(vectors, ids, kind="flat", backend="faiss")
    fallback = build_index(vectors, ids, kind="flat", backend="numpy")
    queries = rng.normal(size=(6, 16)).astype(np.float32)
    a, b = exact.search(queries, 10), fallback.search(queries, 10)
    assert [[h.id for h in row] for row in a] == [[h.id for h in row] for row in b]
    np.testing.assert_allclose(
        [[h.score for h in r] for r in a], [[h.score for h in r] for r in b], atol=1e-5
    )
    hnsw = build_index(vectors, ids, kind="hnsw")
    hnsw.save(tmp_path / "hnsw")
    exact.save(tmp_path / "flat")
    assert (tmp_path / "hnsw" / "index.faiss").is_file() and not (tmp_path / "flat" / "index.faiss").exists()
    for folder, original in (("hnsw", hnsw), ("flat", exact)):
        loaded = SearchIndex.load(tmp_path / folder)
        assert loaded.kind == original.kind
        got, want = loaded.search(queries, 5), original.search(queries, 5)
        assert [[h.id for h in r] for r in got] == [[h.id for h in r] for r in want]
    # Without faiss: exact search still works in torch, approximate kinds are refused.
    monkeypatch.setattr(search_module, "faiss_available", lambda: False)
    assert SearchIndex.load(tmp_path / "flat").backend == "numpy"
    with pytest.raises(ImportError, match="faiss-cpu"):
        build_index(vectors, ids, kind="hnsw")
    with pytest.raises(ValueError, match="dim 3"):
        fallback.search(np.ones((1, 3)), 1)


def test_html_page_has_inline_thumbnails(embedded: Path, shards: Path, tmp_path: Path) -> None:
    collection = EmbeddingSet.load(embedded)
    index = build_index(collection)
    reader = ShardReader(shards)
    queries = [(reader[i].id, reader[i].pil_image()) for i in (2, 20)]
    hits = index.search(collection.embeddings[[2, 20]], k=4)
    page = write_search_html(tmp_path / "page.html", queries, hits).read_text()
    assert page.count("data:image/png;base64,") == 2 * (1 + 4)
    assert "image unavailable" not in page
    assert f"#1 1.000<br>{reader[2].id}" in page


def test_search_command(embedded: Path, shards: Path, tmp_path: Path) -> None:
    from megastyle.cli.app import app

    record = ShardReader(shards)[9]
    query = tmp_path / "query.png"
    record.pil_image().save(query)
    out = tmp_path / "out.html"
    args = ["search", "--embeddings", str(embedded), "--encoder", str(tiny_model_dir("siglip")),
            "--queries", str(query), "--k", "3", "--output", str(out), "--save-index", str(tmp_path / "idx")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert out.is_file() and (tmp_path / "idx" / "index.json").is_file()
    first = re.search(r"#1 ([0-9.]+)<br>([^<]+)<", out.read_text())
    assert first is not None and first.group(2) == record.id and float(first.group(1)) > 0.9999
    again = CliRunner().invoke(app, [*args[:1], "--index", str(tmp_path / "idx"), *args[3:-2]])
    assert again.exit_code == 0, again.output
    missing = CliRunner().invoke(app, ["search", "--encoder", str(tiny_model_dir("siglip"))])
    assert missing.exit_code == 2 and "--index FOLDER or --embeddings FILE" in missing.output
