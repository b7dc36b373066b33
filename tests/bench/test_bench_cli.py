"""``megastyle bench retrieval`` / ``bench dataset`` through typer, with TOML encoder lists."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from megastyle.bench.baselines import ColorHistogramEmbedder
from megastyle.bench.dataset_quality import measure_dataset
from megastyle.cli.app import app
from megastyle.testing import tiny_model_dir


def _app() -> typer.Typer:
    return app


def test_bench_retrieval_builds_saves_and_reuses(procedural_shards: Path, tmp_path: Path) -> None:
    siglip = tiny_model_dir("siglip")
    config = tmp_path / "bench.toml"
    config.write_text(
        f"""
[bench_retrieval]
source = "{procedural_shards}"
holdout_styles = 8
seeds = [0, 1]
ks = [1, 5]
output_dir = "{tmp_path / "out"}"
grid_queries = 2
paired_encoder = "tiny"
encoders = [
  {{ name = "hist", kind = "color_histogram", options = {{ bins = 6 }} }},
  {{ name = "tiny", kind = "siglip", path = "{siglip}" }},
  {{ name = "tiny_untrained", kind = "random_init", path = "{siglip}", options = {{ seed = 5 }} }},
]
"""
    )
    result = CliRunner().invoke(_app(), ["bench", "retrieval", "--config", str(config)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    data = json.loads((out / "results.json").read_text())
    assert [row["encoder"] for row in data["summary"]] == ["hist", "tiny", "tiny_untrained"]
    assert data["summary"][0]["seeds"] == 2 and len(data["runs"]) == 2
    assert data["summary"][1]["mean"] != data["summary"][2]["mean"]  # random_init: new weights
    assert data["ks"] == [1, 5] and "recall@5" in data["runs"][0]["encoders"]["hist"]
    # "tiny" minus each other encoder, on each seed's benchmark, for mAP@1, mAP@5 and mAP.
    assert len(data["paired"]) == 2
    assert {(d["encoder"], d["other"], d["metric"]) for d in data["paired"][1]} == {
        ("tiny", other, metric)
        for other in ("hist", "tiny_untrained")
        for metric in ("map@1", "map@5", "mAP")
    }
    markdown = (out / "results.md").read_text()
    assert "tiny minus each encoder" in markdown and "benchmark seed 1" in markdown
    for name in ("results.md", "results.png", "grid_hist.png", "grid_tiny_untrained.png"):
        assert (out / name).is_file(), name
    assert (out / "benchmark_seed1" / "heldout_styles.json").is_file()
    # The saved benchmark is reused as is (one seed) and gives the same histogram scores.
    again = CliRunner().invoke(
        _app(),
        ["bench", "retrieval", "--benchmark", str(out / "benchmark_seed0"), "--output-dir", str(tmp_path / "again"),
         "--ks", "[1, 5]", "--encoders", '[{name = "hist", kind = "color_histogram", options = {bins = 6}}]'],
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    reused = json.loads((tmp_path / "again" / "results.json").read_text())["runs"][0]["encoders"]["hist"]
    assert reused["recall@1"] == data["runs"][0]["encoders"]["hist"]["recall@1"]
    # A held-out list (ours or train-encoder's) fixes the styles of a newly built benchmark.
    named = CliRunner().invoke(
        _app(),
        ["bench", "retrieval", "--source", str(procedural_shards), "--seeds", "[3]",
         "--heldout-styles-file", str(out / "benchmark_seed0" / "heldout_styles.json"),
         "--output-dir", str(tmp_path / "named"), "--encoders", '[{name = "r", kind = "random"}]'],
    )  # fmt: skip
    assert named.exit_code == 0, named.output
    styles = json.loads((tmp_path / "named" / "benchmark_seed3" / "heldout_styles.json").read_text())
    first = json.loads((out / "benchmark_seed0" / "heldout_styles.json").read_text())
    assert set(styles["heldout_styles"]) == set(first["heldout_styles"])


def test_bench_errors_are_clean(tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(), ["bench", "retrieval", "--output-dir", str(tmp_path)])
    assert result.exit_code == 2 and "--source SHARDS" in result.output
    result = CliRunner().invoke(
        _app(),
        ["bench", "retrieval", "--source", str(tmp_path), "--encoders", '[{name = "x", kind = "csd"}]'],
    )
    assert result.exit_code == 2


def test_an_unknown_paired_encoder_is_named(procedural_shards: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        _app(),
        ["bench", "retrieval", "--source", str(procedural_shards), "--holdout-styles", "4", "--output-dir",
         str(tmp_path), "--paired-encoder", "nope"],
    )  # fmt: skip
    assert (
        result.exit_code == 2
        and "paired_encoder 'nope'" in result.output
        and "color_histogram" in result.output
    )


def test_bench_dataset(procedural_shards: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        _app(), ["bench", "dataset", "--source", str(procedural_shards), "--output-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    quality = json.loads((tmp_path / "quality.json").read_text())
    assert set(quality) == {"color_histogram", "gram", "random"}
    assert (
        quality["color_histogram"]["intra_style_consistency"] > quality["random"]["intra_style_consistency"]
    )
    assert "| color_histogram |" in (tmp_path / "quality.md").read_text()
    # One sample serves every embedder, and it is the sample measure_dataset draws on its own.
    alone, _ = measure_dataset(procedural_shards, ColorHistogramEmbedder())
    assert quality["color_histogram"] == json.loads(json.dumps(alone.as_dict()))
    # The first embedder's matched leakage minus each other one's, over the same pairs.
    paired = json.loads((tmp_path / "leakage_paired.json").read_text())
    assert [(d["encoder"], d["other"]) for d in paired] == [
        ("color_histogram", "gram"),
        ("color_histogram", "random"),
    ]
    assert all(d["pairs"] == quality["random"]["matched_pairs"] > 0 for d in paired)
    assert "Matched content leakage, color_histogram minus" in (tmp_path / "quality.md").read_text()


def test_bench_dataset_paired_encoder(procedural_shards: Path, tmp_path: Path) -> None:
    args = ["bench", "dataset", "--source", str(procedural_shards), "--output-dir", str(tmp_path)]
    result = CliRunner().invoke(_app(), [*args, "--paired-encoder", "random"])
    assert result.exit_code == 0, result.output
    paired = json.loads((tmp_path / "leakage_paired.json").read_text())
    assert {d["encoder"] for d in paired} == {"random"} and {d["other"] for d in paired} == {
        "color_histogram",
        "gram",
    }
    result = CliRunner().invoke(_app(), [*args, "--paired-encoder", "nope"])
    assert result.exit_code == 2 and "paired_encoder 'nope'" in result.output
