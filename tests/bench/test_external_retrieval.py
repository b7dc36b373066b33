"""``bench retrieval`` / ``bench dataset`` on a user's own labelled set: every form, every style scored,
the same numbers as on imported shards, duplicates, content Recall@1, skipped styles, the export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from labelled_sets import FORMS, PER_STYLE, STYLES, entries, form_args, write_form
from megastyle.cli.app import app
from megastyle.encode import load_embeddings

ENCODERS = '[{name = "hist", kind = "color_histogram", options = {bins = 4}}, {name = "r", kind = "random"}]'


def retrieval(source: Path, out: Path, *extra: str) -> dict[str, Any]:
    args = ["bench", "retrieval", "--source", str(source), "--output-dir", str(out), "--all-styles",
            "--encoders", ENCODERS, "--ks", "[1, 3]", "--grid-queries", "2", *extra]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    data["output"] = " ".join(result.output.split())
    return data


def scores(data: dict[str, Any], content: bool = True) -> dict[str, dict[str, Any]]:
    return {
        name: {k: v for k, v in run.items() if k != "seconds" and (content or not k.startswith("content"))}
        for name, run in data["runs"][0]["encoders"].items()
    }


def test_each_form_scores_alike_and_equals_the_imported_shards(tmp_path: Path) -> None:
    found = {}
    for form in FORMS:
        source = write_form(tmp_path / form, form)
        found[form] = retrieval(source, tmp_path / f"out-{form}", *form_args(form))
    # Every form holds the same images and labels in the same order: the same numbers.
    for form in FORMS[1:]:  # (a folder per style carries no content labels)
        assert scores(found[form], content=False) == scores(found["folders"], content=False), form
    assert scores(found["csv"]) == scores(found["jsonl"]) == scores(found["parquet"])
    assert found["folders"]["runs"][0]["encoders"]["hist"]["content_recall@1"] is None
    csv = found["csv"]
    scope = csv["runs"][0]["scope"]
    assert (scope["mode"], scope["styles"], scope["queries"], scope["gallery"]) == ("all_styles", 3, 12, 12)
    assert (
        "All styles scored (leave-one-out" in csv["output"]
        and "3 of 3 styles, 12 queries, 12 gallery" in csv["output"]
    )
    assert (tmp_path / "out-csv" / "imported").is_dir()
    # The folder + CSV through `megastyle import`, then benchmarked as shards: exactly the same numbers.
    shards = tmp_path / "shards"
    imported = CliRunner().invoke(
        app, ["import", "--source", str(tmp_path / "csv"), "--output-dir", str(shards)]
    )
    assert imported.exit_code == 0, imported.output
    on_shards = retrieval(shards, tmp_path / "out-shards")
    assert scores(on_shards) == scores(csv)
    assert on_shards["runs"][0]["scope"] == scope
    # A share of each style's images as queries: one query of four per style at 0.25.
    share = retrieval(tmp_path / "csv", tmp_path / "out-share", "--queries", "0.25", "--seeds", "[0, 1]")
    assert [(r["queries"], r["gallery"]) for r in share["runs"]] == [(3, 9), (3, 9)]


def test_duplicates_skipped_styles_content_recall_and_export(tmp_path: Path) -> None:
    source = write_form(tmp_path / "set", "csv")
    rows = entries()
    with (source / "labels.csv").open("a", encoding="utf-8") as handle:
        # An exact copy of a cubism image filed under another style, and a style of one image.
        (source / "images" / "copy.png").write_bytes(rows[0][3])
        handle.write("images/copy.png,ukiyo-e,square\n")
        (source / "images" / "lonely.png").write_bytes(rows[5][3][:-1] + b"\x00")
        handle.write("images/lonely.png,lonely style,bar\n")
    out = tmp_path / "out"
    data = retrieval(source, out, "--export-embeddings", str(tmp_path / "emb"))
    scope = data["runs"][0]["scope"]
    assert [s["style"] for s in scope["skipped_styles"]] == ["lonely style"]
    assert "Skipped 1 styles with fewer than 2 images: lonely style (1)" in data["output"]
    (duplicate,) = scope["duplicates"]
    assert duplicate["id"] == "images/copy.png" and duplicate["duplicate_of"] == "images/cubism_0.png"
    assert duplicate["excluded"] == "query and gallery"
    assert (
        "Left out 1 exact duplicates of a query (same image bytes): images/copy.png = images/cubism_0.png"
        in (data["output"])
    )
    assert scope["queries"] == scope["gallery"] == len(rows)  # the copy is out, the lonely style skipped
    # Content labels: content Recall@1 of the same embeddings, beside style retrieval.
    hist = data["runs"][0]["encoders"]["hist"]
    assert 0.0 <= hist["content_recall@1"] <= 1.0 and hist["content_queries"] == len(rows)
    assert "content R@1" in data["output"] and "content_recall@1" in (out / "results.md").read_text()
    markdown = (out / "results.md").read_text()
    assert "Left out 1 exact duplicates" in markdown and "lonely style (1)" in markdown
    # The export: every encoder's embeddings (baselines included) with ids and labels.
    for name, dim in (("hist", 64), ("r", None)):
        exported = load_embeddings(tmp_path / "emb" / f"{name}.safetensors")
        assert exported.embeddings.shape[0] == len(rows) and (
            dim is None or exported.embeddings.shape[1] == dim
        )
        assert [item.style_label for item in exported.items] == [style for _, style, _, _ in rows]
        assert exported.ids[0] == "images/cubism_0.png" and exported.info["encoder"] == name
        np.testing.assert_allclose(np.linalg.norm(exported.embeddings, axis=1), 1.0, atol=1e-5)
    import pyarrow.parquet as pq

    split = pq.read_table(tmp_path / "emb" / "split.parquet").to_pylist()
    assert {row["role"] for row in split} == {"both"} and len(split) == len(rows)
    # Without the duplicate check the copy is scored, and finds its twin.
    kept = retrieval(source, tmp_path / "kept", "--exclude-duplicates", "false")
    assert kept["runs"][0]["scope"]["duplicates"] == [] and kept["runs"][0]["queries"] == len(rows) + 1


def test_a_gallery_copy_of_a_query_is_left_out(tmp_path: Path) -> None:
    source = write_form(tmp_path / "set", "folders")
    # A copy in the same style: with queries as a share, only gallery copies of a query are left out.
    (source / "cubism" / "z-copy.png").write_bytes((source / "cubism" / "0.png").read_bytes())
    found = {}
    for seed in range(6):
        data = retrieval(source, tmp_path / f"o{seed}", "--queries", "0.2", "--seeds", f"[{seed}]")
        found[seed] = data["runs"][0]["scope"]["duplicates"]
    pairs = [d for dups in found.values() for d in dups]
    assert pairs and all(d["excluded"] == "gallery" for d in pairs)
    assert {frozenset((d["id"], d["duplicate_of"])) for d in pairs} == {
        frozenset(("cubism/0.png", "cubism/z-copy.png"))
    }


@pytest.mark.parametrize("form", FORMS)
def test_bench_dataset_reads_each_form(form: str, tmp_path: Path) -> None:
    source = write_form(tmp_path / form, form)
    out = tmp_path / "out"
    args = ["bench", "dataset", "--source", str(source), "--output-dir", str(out), "--max-pairs", "1000",
            "--encoders", '[{name = "hist", kind = "color_histogram", options = {bins = 4}}]', *form_args(form)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    quality = json.loads((out / "quality.json").read_text())["hist"]
    assert (quality["styles"], quality["images"]) == (len(STYLES), len(STYLES) * PER_STYLE)
    # Content labels (all but the folder form) give leakage pairs; without them there are none.
    assert (quality["same_content_pairs"] > 0) == (form != "folders")
