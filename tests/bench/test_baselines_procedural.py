"""Training-free baselines against chance on procedural held-out styles, and the written report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.console import Console

from megastyle.bench.baselines import ColorHistogramEmbedder, GramEmbedder, RandomEmbedder
from megastyle.bench.report import summarise, write_retrieval_report
from megastyle.bench.retrieval import RetrievalResult, build_benchmark, evaluate


@pytest.fixture(scope="module")
def scored(procedural_shards: Path) -> tuple[object, RetrievalResult]:
    bench = build_benchmark(procedural_shards, holdout_styles=16, queries_per_style=2, seed=0)
    encoders = {
        "color_histogram": ColorHistogramEmbedder(),
        "gram": GramEmbedder(image_size=64),
        "random": RandomEmbedder(),
    }
    return bench, evaluate(bench, encoders, ks=(1, 10, 100))


def test_training_free_baselines_beat_chance(scored: tuple[object, RetrievalResult]) -> None:
    _, result = scored
    assert len(result.queries) == 32 and len(result.gallery) == 64
    chance = result.runs["random"].scores
    # Measured on this data: random R@1 0.094 / mAP 0.115; histogram 1.0 / 1.0; Gram 0.97 / 0.82.
    assert chance.recall[1] < 0.25 and chance.mean_ap is not None and chance.mean_ap < 0.25
    for name in ("color_histogram", "gram"):
        scores = result.runs[name].scores
        assert scores.recall[1] >= chance.recall[1] + 0.6, name
        assert scores.mean_ap is not None and scores.mean_ap >= chance.mean_ap + 0.5, name
        assert scores.map_at_k[1] == scores.recall[1]
    # 64-image gallery: k = 100 is clipped and Recall@100 is trivially 1.
    assert result.runs["gram"].scores.effective_k[100] == 64
    assert result.runs["random"].scores.recall[100] == 1.0


def test_report_files(scored: tuple[object, RetrievalResult], tmp_path: Path) -> None:
    bench, result = scored
    console = Console(record=True, width=200)
    files = write_retrieval_report([result], [bench], tmp_path, grid_queries=4, grid_top=3, console=console)
    printed = console.export_text()
    assert "color_histogram" in printed and "minus each encoder" in printed  # both tables
    data = json.loads(files["json"].read_text())
    run = data["runs"][0]["encoders"]["gram"]
    assert run["recall@1"] == result.runs["gram"].scores.recall[1]
    assert run["effective_k"]["100"] == 64
    markdown = files["markdown"].read_text()
    assert "| color_histogram |" in markdown and "recall@10" in markdown
    # The first encoder against the others, query by query.
    paired = data["paired"][0]
    assert {(d["encoder"], d["other"]) for d in paired} == {
        ("color_histogram", "gram"),
        ("color_histogram", "random"),
    }
    top1 = next(d for d in paired if d["other"] == "random" and d["metric"] == "map@1")
    expected = result.runs["color_histogram"].scores.recall[1] - result.runs["random"].scores.recall[1]
    assert top1["difference"] == pytest.approx(expected) and top1["ci95"][0] > 0
    assert "color_histogram minus each encoder" in markdown and "| random | mAP@1 |" in markdown
    plot = Image.open(files["plot"])
    assert plot.size[0] > 300
    grid = Image.open(files["grid:color_histogram"]).convert("RGB")
    # 4 rows of query + 3 results; borders are pure green (hit) or red (miss) pixels.
    pixels = np.asarray(grid).reshape(-1, 3)
    assert (pixels == (30, 170, 60)).all(axis=1).any()
    assert set(files) >= {"json", "markdown", "plot", "grid:gram", "grid:random"}


def test_summary_over_seeds_has_spread(procedural_shards: Path) -> None:
    results = [
        evaluate(
            build_benchmark(procedural_shards, holdout_styles=8, seed=s), {"r": RandomEmbedder()}, ks=(1,)
        )
        for s in (0, 1, 2)
    ]
    (row,) = summarise(results)
    assert row.seeds == 3
    values = [r.runs["r"].scores.recall[1] for r in results]
    assert row.mean["recall@1"] == pytest.approx(np.mean(values))
    assert row.std["recall@1"] == pytest.approx(np.std(values))
