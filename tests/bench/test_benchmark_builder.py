"""The StyleRetrieval benchmark builder: held-out styles, seeding, the artefact, source changes."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from megastyle.bench.retrieval import (
    BenchmarkSourceError,
    RetrievalBenchmark,
    build_benchmark,
    load_heldout_styles,
)
from megastyle.data import ShardReader, build_style_index, list_shards, write_shard


def test_heldout_styles_are_disjoint_from_training_styles(procedural_shards: Path) -> None:
    bench = build_benchmark(procedural_shards, holdout_styles=6, queries_per_style=2, seed=3)
    index = build_style_index(procedural_shards)
    heldout = {s["style"] for s in bench.heldout_styles}
    training = set(index.styles) - heldout
    assert len(heldout) == 6 and len(training) == 10
    assert {item.style for item in bench.items} == heldout
    assert bench.manifest["counts"]["training_styles"] == 10
    # Each held-out style: 2 queries, the other 4 rows in the gallery, never both.
    for style in heldout:
        roles = [item.role for item in bench.items if item.style == style]
        assert roles.count("query") == 2 and roles.count("gallery") == 4
    assert not {i.global_row for i in bench.queries} & {i.global_row for i in bench.gallery}
    # The labels group exactly the style texts.
    assert len({(i.label, i.style) for i in bench.items}) == 6


def test_seeded_and_fraction(procedural_shards: Path) -> None:
    a = build_benchmark(procedural_shards, holdout_styles=0.25, seed=1)
    b = build_benchmark(procedural_shards, holdout_styles=0.25, seed=1)
    c = build_benchmark(procedural_shards, holdout_styles=0.25, seed=2)
    assert a.items == b.items
    assert len(a.heldout_styles) == 4  # 25 % of 16 eligible styles
    assert {s["style"] for s in a.heldout_styles} != {s["style"] for s in c.heldout_styles}


def test_distractors_are_gallery_only_and_listed_as_held_out(procedural_shards: Path) -> None:
    bench = build_benchmark(procedural_shards, holdout_styles=4, distractor_styles=3, seed=0)
    roles = {s["style"]: s["role"] for s in bench.heldout_styles}
    assert sorted(roles.values()).count("distractor") == 3
    distractors = {style for style, role in roles.items() if role == "distractor"}
    assert all(item.role == "gallery" for item in bench.items if item.style in distractors)
    assert bench.manifest["counts"]["training_styles"] == 16 - 7


def test_bad_parameters_are_clear_errors(procedural_shards: Path) -> None:
    with pytest.raises(ValueError, match="cannot hold out 17 styles"):
        build_benchmark(procedural_shards, holdout_styles=17)
    with pytest.raises(ValueError, match="have >= 7 images"):
        build_benchmark(procedural_shards, holdout_styles=2, queries_per_style=6)
    with pytest.raises(ValueError, match="fraction"):
        build_benchmark(procedural_shards, holdout_styles=1.5)


def test_artefact_round_trip_and_images(procedural_shards: Path, tmp_path: Path) -> None:
    bench = build_benchmark(procedural_shards, holdout_styles=5, queries_per_style=1, seed=0)
    folder = bench.save(tmp_path / "bench")
    assert {p.name for p in folder.iterdir()} == {"benchmark.json", "rows.parquet", "heldout_styles.json"}
    loaded = RetrievalBenchmark.load(folder)
    assert loaded.items == bench.items
    assert loaded.manifest["source_fingerprint"] == bench.manifest["source_fingerprint"]
    heldout = load_heldout_styles(folder)
    listed = json.loads((folder / "heldout_styles.json").read_text())["styles"]
    assert all(entry["style_id"] is not None and entry["style"] for entry in listed)
    assert len(heldout) == 5 and all(heldout.contains(item.style) for item in bench.items)
    assert not heldout.contains("In the style of something else entirely")
    assert heldout.contains("unknown text", listed[0]["style_id"], match_ids=True)
    # References resolve to the very rows: shard file + row and global row agree with the reader.
    reader = ShardReader(procedural_shards)
    item = loaded.queries[0]
    record = reader[item.global_row]
    assert record.id == item.id and record.style == item.style
    shard = ShardReader(procedural_shards / item.shard)
    assert shard[item.shard_row].id == item.id
    image = loaded.load_images([item])[0]
    assert image.tobytes() == record.pil_image().tobytes()


def test_changed_or_moved_source_is_detected(procedural_shards: Path, tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(procedural_shards, source)
    folder = build_benchmark(source, holdout_styles=4, seed=0).save(tmp_path / "bench")
    moved = tmp_path / "moved"
    shutil.copytree(source, moved)
    # A copy elsewhere (new mtimes) still matches when the artefact is pointed at it.
    assert RetrievalBenchmark.load(folder, source=moved).items
    # Rewrite one shard with a changed style text: the fingerprint no longer matches.
    first = list_shards(moved)[0]
    records = list(ShardReader(first))
    records[0] = dataclasses.replace(records[0], style=records[0].style + " (edited)")
    write_shard(first, records, row_group_size=10)
    with pytest.raises(BenchmarkSourceError, match="changed since benchmark"):
        RetrievalBenchmark.load(folder, source=moved)
    # A deleted shard is reported as missing.
    shutil.rmtree(source)
    with pytest.raises(BenchmarkSourceError, match="missing"):
        RetrievalBenchmark.load(folder)


def test_shard_paths_resolve_from_the_artefact_not_the_working_directory(
    procedural_shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    shutil.copytree(procedural_shards, project / "runs" / "data")
    monkeypatch.chdir(project)  # built with a relative source, as `megastyle bench build runs/data` does
    folder = build_benchmark(Path("runs/data"), holdout_styles=4, seed=0).save(Path("runs/bench"))
    stored = json.loads((folder / "benchmark.json").read_text())["source_shards"]
    assert stored and all(p.startswith("../data/") for p in stored)
    # Another working directory holding a different dataset under the same relative path.
    other = tmp_path / "other"
    shutil.copytree(procedural_shards, other / "runs" / "data")
    first = list_shards(other / "runs" / "data")[0]
    records = list(ShardReader(first))
    records[0] = dataclasses.replace(records[0], style=records[0].style + " (edited)")
    write_shard(first, records, row_group_size=10)
    monkeypatch.chdir(other)
    loaded = RetrievalBenchmark.load(project / "runs" / "bench")
    assert loaded.items and all(str(s).startswith(str(project)) for s in loaded.source_shards)
    # An artefact written before paths were stored this way (relative to the working directory) still loads.
    legacy = project / "runs" / "bench" / "benchmark.json"
    manifest = json.loads(legacy.read_text())
    manifest["source_shards"] = [p.replace("../data/", "runs/data/") for p in manifest["source_shards"]]
    legacy.write_text(json.dumps(manifest))
    monkeypatch.chdir(project)
    assert RetrievalBenchmark.load(Path("runs/bench")).items
    manifest["source_shards"] = stored
    legacy.write_text(json.dumps(manifest))
    # Moved together, the artefact still finds its shards.
    shutil.move(project / "runs", tmp_path / "moved")
    assert RetrievalBenchmark.load(tmp_path / "moved" / "bench").items


def test_evaluation_skips_undecodable_rows_and_streams_large_sets(
    procedural_shards: Path, tmp_path: Path
) -> None:
    from megastyle.bench.baselines import ColorHistogramEmbedder
    from megastyle.bench.retrieval import evaluate

    source = tmp_path / "source"
    shutil.copytree(procedural_shards, source)
    first = list_shards(source)[0]
    records = list(ShardReader(first))
    broken = records[3].id
    records[3] = dataclasses.replace(records[3], image=b"not an image")
    write_shard(first, records, row_group_size=10)
    bench = build_benchmark(source, holdout_styles=16, seed=0)
    assert broken in {item.id for item in bench.items}
    encoders = {"hist": ColorHistogramEmbedder()}
    cached = evaluate(bench, encoders, ks=(1, 10))
    streamed = evaluate(bench, encoders, ks=(1, 10), read_batch=7)  # decodes batch by batch
    for result in (cached, streamed):
        assert [r.item for r in result.rejects] == [broken]
        assert "cannot decode" in result.rejects[0].cause
        assert len(result.queries) + len(result.gallery) == len(bench.items) - 1
    assert cached.runs["hist"].scores.as_dict() == streamed.runs["hist"].scores.as_dict()
    assert (cached.runs["hist"].top.indices == streamed.runs["hist"].top.indices).all()


def test_named_heldout_styles_and_the_train_encoder_format(procedural_shards: Path, tmp_path: Path) -> None:
    from megastyle.data.styles import read_holdout_file

    bench = build_benchmark(procedural_shards, holdout_styles=5, seed=0)
    folder = bench.save(tmp_path / "bench")
    # train-encoder's --holdout-styles-file reader gets exactly the benchmark's style texts.
    assert set(read_holdout_file(folder / "heldout_styles.json")) == {
        s["style"] for s in bench.heldout_styles
    }
    # The other way round: train-encoder's own list (texts or numeric ids) fixes the benchmark's styles.
    index = build_style_index(procedural_shards)
    listed = tmp_path / "train_heldout.json"
    listed.write_text(json.dumps({"heldout_styles": [index.styles[2], str(index.style_ids[7])], "seed": 0}))
    named = load_heldout_styles(listed)
    assert named.contains(index.styles[7], index.style_ids[7], match_ids=True)
    again = build_benchmark(procedural_shards, heldout=named.entries, seed=4)
    assert {item.style for item in again.items} == {index.styles[2], index.styles[7]}
    assert again.manifest["params"]["named_heldout"] is True
    with pytest.raises(ValueError, match="not in the source"):
        build_benchmark(procedural_shards, heldout=["In the style of nothing we have"])
