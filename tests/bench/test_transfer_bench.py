"""StyleBench-like transfer evaluation: scores, their ordering on known generators, references, CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from megastyle.bench.clip import ClipScorer
from megastyle.bench.transfer import (
    CopyReferenceGenerator,
    evaluate_transfer,
    transfer_markdown,
    write_transfer_report,
)
from megastyle.cli.app import app as megastyle_app
from megastyle.encode import StyleEncoder
from megastyle.testing import random_images, tiny_model_dir
from megastyle.transfer import MegaStyleFluxPipeline
from megastyle.transfer.generate import (
    OFFICIAL_CONTENT_PROMPTS,
    PipelineGenerator,
    StyleReference,
    load_references,
)


@pytest.fixture(scope="module")
def encoder() -> StyleEncoder:
    """The tiny random SigLIP as a style encoder."""
    return StyleEncoder.from_pretrained(tiny_model_dir("siglip"))


@pytest.fixture(scope="module")
def clip() -> ClipScorer:
    """The tiny random CLIP."""
    return ClipScorer(tiny_model_dir("clip"))


@pytest.fixture(scope="module")
def tiny_generator() -> PipelineGenerator:
    """The untrained tiny MegaStyle pipeline, 2 steps at 16 px."""
    pipe = MegaStyleFluxPipeline.from_pretrained(tiny_model_dir("flux"))
    pipe.set_progress_bar_config(disable=True)
    return PipelineGenerator(pipe, height=16, width=16, num_inference_steps=2, max_sequence_length=16)


def _references(n: int = 3) -> list[StyleReference]:
    return [StyleReference(f"r{i}", image) for i, image in enumerate(random_images(n, (32, 32), seed=11))]


class SwapGenerator:
    """Returns the *next* reference: copies an image, but not the one it was given."""

    def __init__(self, references: list[StyleReference]) -> None:
        self.next = {
            id(r.image): references[(i + 1) % len(references)].image for i, r in enumerate(references)
        }

    def __call__(
        self, prompt: list[str], style_image: list[Image.Image], generator: list[Any]
    ) -> list[Image.Image]:
        return [self.next[id(image)].copy() for image in style_image]


class FlakyGenerator:
    """Fails on its third call, returns noise otherwise (records what it was given)."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[int], list[int]]] = []

    def __call__(
        self, prompt: list[str], style_image: list[Image.Image], generator: list[Any]
    ) -> list[Image.Image]:
        self.calls.append(
            (list(prompt), [id(im) for im in style_image], [g.initial_seed() for g in generator])
        )
        if len(self.calls) == 3:
            raise RuntimeError("out of memory")
        return random_images(len(prompt), (16, 16), seed=len(self.calls))


def test_copy_generator_has_the_highest_leakage_and_style_score(
    tiny_generator: PipelineGenerator, encoder: StyleEncoder, clip: ClipScorer
) -> None:
    references = _references()
    prompts = list(OFFICIAL_CONTENT_PROMPTS)
    generators = {"tiny": tiny_generator, "copy": CopyReferenceGenerator(), "swap": SwapGenerator(references)}
    result = evaluate_transfer(generators, references, prompts, encoder, clip, seed=5, batch_size=2)
    summary = {name: run.summary() for name, run in result.runs.items()}
    for name in generators:
        assert summary[name]["images"] == 9 and summary[name]["failed"] == 0
        assert summary[name]["reference_content_score"] is None  # image folders carry no content prompt
    # Copying the reference: leakage 100 and style score 1 on every image, above the tiny pipeline.
    assert summary["copy"]["content_leakage"] == pytest.approx(100.0, abs=1e-3)
    assert summary["copy"]["style_score"] == pytest.approx(1.0, abs=1e-5)
    # Measured here: tiny ≈ 95 leakage / ≈ 0 style; swap (a copy of another reference) < 100 leakage.
    assert summary["tiny"]["content_leakage"] < summary["copy"]["content_leakage"] - 1.0
    assert summary["tiny"]["style_score"] < summary["copy"]["style_score"] - 0.2
    assert summary["swap"]["content_leakage"] < summary["copy"]["content_leakage"] - 1.0
    assert summary["swap"]["style_score"] < summary["copy"]["style_score"] - 0.05
    # Per-image values are the documented formulas.
    image = result.runs["tiny"].images[1][2]
    out, ref = clip.embed_images([image, references[1].image])
    text = clip.embed_texts([prompts[2]])[0]
    scores = result.runs["tiny"].scores
    assert scores["text_score"][1, 2] == pytest.approx(100 * float(out @ text), abs=1e-4)
    assert scores["content_leakage"][1, 2] == pytest.approx(100 * float(out @ ref), abs=1e-4)
    style = encoder.embed_images([image, references[1].image])
    assert scores["style_score"][1, 2] == pytest.approx(float(style[0] @ style[1]), abs=1e-5)
    # The same seeds for every generator: item (r, p) gets seed + r·P + p.
    assert result.seeds[2] == [11, 12, 13]
    markdown = transfer_markdown(result)
    assert "| copy | 9 | 1.000 ± 0.000 |" in markdown and "ref-content" not in markdown.splitlines()[0]


def test_failures_are_recorded_and_the_run_goes_on(
    encoder: StyleEncoder, clip: ClipScorer, tmp_path: Path
) -> None:
    references = _references(3)
    flaky = FlakyGenerator()
    result = evaluate_transfer(
        {"flaky": flaky}, references, ["a", "b", "c"], encoder, clip, seed=0, batch_size=2
    )
    run = result.runs["flaky"]
    # 9 items in batches of 2, reference-major, one style image and one seed per prompt; call 3 failed.
    assert [c[0] for c in flaky.calls] == [["a", "b"], ["c", "a"], ["b", "c"], ["a", "b"], ["c"]]
    ids = [id(r.image) for r in references]
    assert flaky.calls[1][1] == [ids[0], ids[1]] and flaky.calls[1][2] == [2, 3]
    assert [r.item for r in run.rejects] == ["r1 × 'b'", "r1 × 'c'"]
    assert "out of memory" in run.rejects[0].cause
    assert run.images[1][1] is None and run.images[1][0] is not None
    assert np.isnan(run.scores["style_score"][1, 2]) and not np.isnan(run.scores["style_score"][1, 0])
    assert run.summary()["images"] == 7 and run.summary()["failed"] == 2
    files = write_transfer_report(result, tmp_path, save_images=True)
    assert files["grid:flaky"].is_file() and len(list((tmp_path / "images" / "flaky").glob("*.png"))) == 7
    data = json.loads(files["json"].read_text())
    assert data["per_image"]["flaky"][4]["style_score"] is None and len(data["rejects"]["flaky"]) == 2


def test_references_from_shards_are_one_per_style_and_seeded(procedural_shards: Path) -> None:
    first, rejects = load_references(procedural_shards, max_styles=4, seed=0)
    again, _ = load_references(procedural_shards, max_styles=4, seed=0)
    other, _ = load_references(procedural_shards, max_styles=4, seed=1)
    assert not rejects and len(first) == 4
    assert len({r.style for r in first}) == 4 and all(r.content for r in first)
    assert [r.id for r in first] == [r.id for r in again]
    assert [np.asarray(r.image).tobytes() for r in first] == [np.asarray(r.image).tobytes() for r in again]
    assert [r.id for r in first] != [r.id for r in other]
    assert len(load_references(procedural_shards)[0]) == 16  # all styles


def test_reference_content_score_appears_with_shard_references(
    procedural_shards: Path, encoder: StyleEncoder, clip: ClipScorer
) -> None:
    references, _ = load_references(procedural_shards, max_styles=2, seed=0)
    result = evaluate_transfer({"copy": CopyReferenceGenerator()}, references, ["A bench"], encoder, clip)
    content = clip.embed_texts([references[0].content])[0]
    image = clip.embed_images([references[0].image])[0]
    value = result.runs["copy"].scores["reference_content_score"][0, 0]
    assert value == pytest.approx(100 * float(image @ content), abs=1e-4)
    assert "ref-content" in transfer_markdown(result)


def test_bench_transfer_cli_writes_table_and_grids(tmp_path: Path) -> None:
    folder = tmp_path / "refs"
    folder.mkdir()
    for i, image in enumerate(random_images(3, (24, 24), seed=2)):
        image.save(folder / f"ref{i}.png")
    app = megastyle_app
    args = ["bench", "transfer", "--references", str(folder), "--max-styles", "2", "--model", str(tiny_model_dir("flux")),
            "--style-encoder", str(tiny_model_dir("siglip")), "--clip-model", str(tiny_model_dir("clip")),
            "--extra-prompts", "a lighthouse", "--size", "16", "--steps", "2", "--max-sequence-length", "16",
            "--device", "cpu", "--output-dir", str(tmp_path / "out")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "out" / "transfer.json").read_text())
    assert data["prompts"] == [*OFFICIAL_CONTENT_PROMPTS, "a lighthouse"]
    assert list(data["summary"]) == ["untrained", "copy_reference"] and len(data["references"]) == 2
    for name in ("untrained", "copy_reference"):
        row = data["summary"][name]
        assert row["images"] == 8 and all(
            row[m] is not None for m in ("style_score", "text_score", "content_leakage")
        )
        assert (tmp_path / "out" / f"grid_{name}.png").is_file()
    assert (
        data["summary"]["copy_reference"]["content_leakage"] > data["summary"]["untrained"]["content_leakage"]
    )
    assert "untrained" in (tmp_path / "out" / "transfer.md").read_text()
    missing = CliRunner().invoke(app, ["bench", "transfer", "--references", str(folder)])
    assert missing.exit_code == 2 and "--style-encoder" in missing.output
