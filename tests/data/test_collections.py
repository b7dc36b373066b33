"""A user's own labelled images: the three forms detected and read alike, rejects, ``megastyle import``,
imports reused by key, and ``inspect`` on a folder without shards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labelled_sets import CONTENTS, FORMS, PER_STYLE, STYLES, entries, form_args, write_form
from megastyle.cli.app import app
from megastyle.data import ShardReader
from megastyle.data.collections import (
    CollectionError,
    CollectionOptions,
    detect_form,
    ensure_shards,
    open_collection,
)

PARQUET = CollectionOptions(image_column="picture", style_column="artist_style", content_column="subject")


def options(form: str) -> CollectionOptions:
    return PARQUET if form == "parquet" else CollectionOptions()


@pytest.mark.parametrize("form", FORMS)
def test_each_form_is_detected_and_read_alike(form: str, tmp_path: Path) -> None:
    source = write_form(tmp_path / form, form)
    expected = {"folders": "folders", "csv": "manifest", "jsonl": "manifest", "parquet": "parquet"}[form]
    assert detect_form(source, options(form)) == expected
    collection = open_collection(source, options(form))
    assert collection.styles() == list(STYLES)
    assert collection.contents() == ([] if form == "folders" else list(CONTENTS))  # folders carry no content
    assert [item.style for item in collection.items] == [style for _, style, _, _ in entries()]
    assert [collection.read_bytes(item) for item in collection.items] == [data for *_, data in entries()]
    assert not collection.rejects


def test_a_folder_of_no_form_says_what_was_looked_for(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not images")
    expected = (
        f"{empty}: no *.parquet shards, no manifest and no style subfolders (give one folder per style, "
        "a manifest CSV/JSONL, or Parquet with --style-column)"
    )
    with pytest.raises(CollectionError) as err:
        detect_form(empty)
    assert str(err.value) == expected
    result = CliRunner().invoke(
        app, ["bench", "retrieval", "--source", str(empty), "--output-dir", str(tmp_path / "o")]
    )
    assert (
        result.exit_code == 2 and "no *.parquet shards, no manifest and no style subfolders" in result.output
    )
    # Loose images without labels: the count is named too.
    write_form(tmp_path / "f", "folders")
    loose = tmp_path / "f" / "cubism"
    with pytest.raises(CollectionError, match="4 images but no style labels: no"):
        detect_form(loose)
    with pytest.raises(CollectionError, match=r"no style column .*set --style-column"):
        open_collection(write_form(tmp_path / "p", "parquet"), CollectionOptions(image_column="picture"))


def test_manifest_rejects_a_missing_file_an_undecodable_image_and_an_empty_label(tmp_path: Path) -> None:
    root = write_form(tmp_path / "set", "csv")
    (root / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with (root / "labels.csv").open("a", encoding="utf-8") as handle:
        handle.write("images/gone.png,cubism,bar\n")
        handle.write("images/broken.png,cubism,bar\n")
        handle.write("images/cubism_0.png,,bar\n")
    collection = open_collection(root)
    assert len(collection) == len(entries()) + 1  # the broken file exists: only decoding finds it out
    causes = {r.item: r.cause for r in collection.rejects}
    assert (
        causes["images/gone.png"].startswith("missing file:") and "labels.csv:" in causes["images/gone.png"]
    )
    assert causes["images/cubism_0.png"].startswith("empty style label")
    out = tmp_path / "shards"
    result = CliRunner().invoke(app, ["import", "--source", str(root), "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    by_item = {r["item"]: r["cause"] for r in rejects}
    assert set(by_item) == {"images/gone.png", "images/broken.png", "images/cubism_0.png"}
    assert "0x" not in by_item["images/broken.png"]  # no object addresses in a cause
    assert len(ShardReader(out)) == len(entries())
    assert "3 rejected" in " ".join(result.output.split())


def test_import_writes_megastyle_shards_and_guards_its_folder(tmp_path: Path) -> None:
    source = write_form(tmp_path / "set", "parquet")
    out = tmp_path / "shards"
    args = ["import", "--source", str(source), "--output-dir", str(out), *form_args("parquet")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = (
        ShardReader(out).read_table(["id", "image", "style", "content", "style_id", "content_id"]).to_pylist()
    )
    assert [r["style"] for r in rows] == [style for _, style, _, _ in entries()]
    assert [r["style_id"] for r in rows] == [i // PER_STYLE for i in range(len(rows))]  # dense, label order
    assert [r["content_id"] for r in rows] == [CONTENTS.index(c) for _, _, c, _ in entries()]
    assert [r["image"]["bytes"] for r in rows] == [data for *_, data in entries()]  # original bytes kept
    summary = json.loads((out / "import.json").read_text())
    assert (summary["styles"], summary["images"], summary["rejected"], summary["content_labels"]) == (
        3,
        12,
        0,
        True,
    )
    text = " ".join(result.output.split())
    assert "12 images of 3 styles" in text and "content labels: yes" in text
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "already holds this import" in " ".join(again.output.split())
    # A folder it did not make is refused; so is the source itself.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    refused = CliRunner().invoke(
        app, ["import", "--source", str(source), "--output-dir", str(mine), *form_args("parquet")]
    )
    assert refused.exit_code == 2 and "not empty" in refused.output and (mine / "keep.txt").is_file()
    no_content = write_form(tmp_path / "plain", "folders", content=False)
    plain = CliRunner().invoke(
        app, ["import", "--source", str(no_content), "--output-dir", str(tmp_path / "p")]
    )
    assert plain.exit_code == 0 and "content labels: no" in " ".join(plain.output.split())
    assert ShardReader(tmp_path / "p")[0].content_id is None


def test_an_import_is_reused_until_the_source_changes(tmp_path: Path) -> None:
    source = write_form(tmp_path / "set", "jsonl")
    first = ensure_shards(source, cache_root=tmp_path / "cache", progress=False)
    assert first.form == "manifest" and not first.reused and first.shards.parent == tmp_path / "cache"
    assert not list(source.rglob("*.parquet"))  # never into the user's folder
    again = ensure_shards(source, cache_root=tmp_path / "cache", progress=False)
    assert again.reused and again.shards == first.shards and "reusing" in (again.notice() or "")
    (source / "images" / "cubism_0.png").write_bytes(entries()[1][3])  # a file changes: a new import
    changed = ensure_shards(source, cache_root=tmp_path / "cache", progress=False)
    assert not changed.reused and changed.shards != first.shards
    shards = tmp_path / "shards"
    CliRunner().invoke(app, ["import", "--source", str(source), "--output-dir", str(shards)])
    assert ensure_shards(shards, cache_root=tmp_path / "cache").shards == shards  # shards stay as they are


def test_inspect_a_folder_without_shards_fails_and_says_what_it_is(tmp_path: Path) -> None:
    source = write_form(tmp_path / "set", "folders")
    result = CliRunner().invoke(app, ["inspect", "--source", str(source)])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "no *.parquet shards, but a folder per style with 3 styles" in text
    assert "megastyle import" in text
    shards = tmp_path / "shards"
    CliRunner().invoke(app, ["import", "--source", str(source), "--output-dir", str(shards)])
    ok = CliRunner().invoke(app, ["inspect", "--path", str(shards), "--verify-images"])  # the old name works
    assert ok.exit_code == 0, ok.output
    assert "undecodable images" in ok.output
