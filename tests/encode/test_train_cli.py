"""``megastyle train-encoder`` through typer: config printing, overrides, a short run."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from megastyle.cli.app import app as megastyle_app
from megastyle.curate.generate import plan_images, run_generate
from megastyle.prompts import sample_content_prompts, sample_style_prompts


@pytest.fixture
def app() -> typer.Typer:
    return megastyle_app


def test_print_config_reads_toml_section_and_overrides(app: typer.Typer, tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text("[train_encoder]\nstyles_per_batch = 6\n[train_encoder.tiny]\nnum_hidden_layers = 2\n")
    result = CliRunner().invoke(
        app, ["train-encoder", "--config", str(recipe), "--images-per-style", "8", "--print-config"]
    )
    assert result.exit_code == 0, result.output
    printed = tomllib.loads(result.output)
    assert printed["styles_per_batch"] == 6 and printed["images_per_style"] == 8
    assert printed["tiny"]["num_hidden_layers"] == 2 and printed["tiny"]["hidden_size"] == 384
    bad = CliRunner().invoke(app, ["train-encoder", "--images-per-style", "1", "--print-config"])
    assert bad.exit_code == 2


def test_short_run_prints_the_heldout_table(app: typer.Typer, tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    plan = plan_images(sample_style_prompts(6, seed=21), sample_content_prompts(6, seed=22), 4, seed=0)
    run_generate(plan, shards, size=16, show_progress=False)
    args = ["train-encoder", "--data-dirs", str(shards), "--output-dir", str(tmp_path / "run")]
    args += ["--tiny.image-size", "16", "--tiny.hidden-size", "12", "--tiny.num-attention-heads", "2"]
    args += ["--tiny.num-hidden-layers", "1", "--tiny.intermediate-size", "16"]
    args += ["--siglip-weight", "0", "--holdout-fraction", "0.34", "--styles-per-batch", "2"]
    args += ["--images-per-style", "2", "--max-steps", "2", "--progress", "false"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 steps" in result.output and "held-out styles (2)" in result.output
    assert (tmp_path / "run" / "encoder" / "model.safetensors").is_file()
