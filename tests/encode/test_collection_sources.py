"""``embed``, ``search`` and ``train-encoder`` on a user's own labelled set in every form, through the CLI;
search's skipped queries, capped k and pages; ``score``'s notice where the two decodings differ."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from labelled_sets import CONTENTS, FORMS, STYLES, entries, form_args, write_form
from megastyle.cli.app import app
from megastyle.encode import load_embeddings
from megastyle.testing import tiny_model_dir


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


@pytest.mark.parametrize("form", FORMS)
def test_embed_reads_each_form_with_its_labels(form: str, tmp_path: Path) -> None:
    source = write_form(tmp_path / form, form)
    out = tmp_path / "out" / "emb.safetensors"
    invoke("embed", "--encoder", str(tiny_model_dir("siglip")), "--source", str(source), "--output", str(out),
           "--device", "cpu", "--progress", "false", *form_args(form))  # fmt: skip
    result = load_embeddings(out)
    assert len(result.items) == len(entries()) and not result.rejects
    assert [item.style_label for item in result.items] == [style for _, style, _, _ in entries()]
    assert [item.style_id for item in result.items] == [STYLES.index(s) for _, s, _, _ in entries()]
    contents = [item.content_label for item in result.items]
    assert contents == ([None] * len(entries()) if form == "folders" else [c for _, _, c, _ in entries()])
    if form != "folders":
        assert [item.content_id for item in result.items] == [CONTENTS.index(c) for _, _, c, _ in entries()]
    # Folders and manifests are read in place; Parquet rows through an import beside the output.
    assert (tmp_path / "out" / "imported").is_dir() == (form == "parquet")


def test_search_a_source_with_a_bad_query_a_large_k_and_pages(tmp_path: Path) -> None:
    source = write_form(tmp_path / "set", "folders")
    good = [source / "cubism" / "0.png", source / "ukiyo-e" / "1.png", source / "pointillism" / "2.png"]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    base = ["search", "--encoder", str(tiny_model_dir("siglip")), "--source", str(source), "--device", "cpu"]
    queries = [arg for q in [*good, broken] for arg in ("--queries", str(q))]
    page = tmp_path / "page" / "search.html"
    text = invoke(*base, *queries, "--k", "100", "--output", str(page))
    assert f"skipped query {broken}" in text and "1 query images skipped" in text
    assert "--k 100 is more than the 12 items in the collection: showing 12" in text
    assert "embedded 12 images" in text and page.is_file()
    html = page.read_text()
    assert "Query images skipped" in html and html.count("<figure>") == 3 * 12
    # Again: the embeddings are reused; 3 queries × 5 results on pages of at most 10.
    text = invoke(*base, *queries, "--k", "5", "--output", str(page), "--max-results-per-page", "10")
    assert "reused 12 images" in text and "15 results split into 2 pages of at most 10" in text
    second = page.with_name("search-2.html")
    assert (
        second.is_file() and "page 2 of 2" in second.read_text() and page.read_text().count("<figure>") == 10
    )
    # One query's results beyond a page: refused in one line.
    refused = CliRunner().invoke(
        app, [*base, *queries, "--k", "12", "--output", str(page), "--max-results-per-page", "10"]
    )
    assert refused.exit_code == 2 and "exceed the 10-result page limit" in refused.output
    nothing = CliRunner().invoke(app, [*base, "--queries", str(broken), "--output", str(page)])
    assert nothing.exit_code == 2 and "no readable query image" in nothing.output


@pytest.mark.parametrize("form", FORMS)
def test_train_encoder_reads_each_form(form: str, tmp_path: Path) -> None:
    source = write_form(tmp_path / form, form)
    out = tmp_path / "run"
    # The old option name still works (one form uses it).
    option = "--data-dirs" if form == "jsonl" else "--source"
    text = invoke("train-encoder", option, str(source), "--output-dir", str(out), "--init", "tiny",
                  "--tiny.image-size", "16", "--tiny.hidden-size", "12", "--tiny.num-attention-heads", "2",
                  "--tiny.num-hidden-layers", "1", "--tiny.intermediate-size", "16", "--siglip-weight", "0",
                  "--styles-per-batch", "2", "--images-per-style", "2", "--max-steps", "1", "--progress", "false",
                  *form_args(form))  # fmt: skip
    assert "1 steps" in text and (out / "encoder" / "model.safetensors").is_file()
    (imported,) = (out / "imported").iterdir()  # imported once under the run's own folder
    assert json.loads((imported / "import.json").read_text())["images"] == len(entries())


def test_score_says_when_the_official_decoding_differs(tmp_path: Path) -> None:
    encoder = ["--encoder", str(tiny_model_dir("siglip"))]
    rng = np.random.default_rng(3)
    photo = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(photo, exif=exif.tobytes())
    deep = tmp_path / "deep.png"
    Image.fromarray(rng.integers(0, 65536, (32, 32), dtype=np.uint16)).save(deep)
    plain = tmp_path / "plain.png"
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(plain)
    text = invoke("score", str(photo), str(deep), *encoder)
    assert text.startswith("=> style score:")
    assert "note: decoded as the official script does" in text
    assert f"{photo}: EXIF rotation applied" in text and f"{deep}: 16-bit values scaled, not clipped" in text
    assert "with megastyle's decoding the score is" in text
    same = invoke("score", str(plain), str(plain), *encoder)
    assert "note:" not in same
    readout = json.loads(
        CliRunner().invoke(app, ["score", str(plain), str(deep), *encoder, "--json-output"]).stdout
    )
    assert (
        list(readout["decoding_differs"]) == [str(deep)] and readout["score_megastyle_decoding"] is not None
    )
