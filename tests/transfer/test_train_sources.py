"""``train-transfer`` on a user's own labelled set in every form, through the CLI (one tiny FLUX step each)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labelled_sets import FORMS, entries, form_args, write_form
from megastyle.cli.app import app
from megastyle.testing.fixtures import tiny_model, tiny_models_root  # noqa: F401  (pytest fixtures)


@pytest.mark.parametrize("form", FORMS)
def test_train_transfer_reads_each_form(form: str, tmp_path: Path, tiny_model: Callable[..., Path]) -> None:  # noqa: F811
    source = write_form(tmp_path / form, form)
    out = tmp_path / "run"
    option = "--data-dirs" if form == "csv" else "--source"  # the old name still works
    args = ["train-transfer", option, str(source), "--model", str(tiny_model("flux")), "--output-dir", str(out),
            "--height", "32", "--width", "32", "--max-sequence-length", "8", "--rank", "2", "--max-steps", "1",
            "--progress", "false", "--save-formats", '["diffusers"]', *form_args(form)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1 steps" in result.output and (out / "pytorch_lora_weights.safetensors").is_file()
    (imported,) = (out / "imported").iterdir()  # imported once under the run's own folder
    assert json.loads((imported / "import.json").read_text())["images"] == len(entries())
    assert json.loads((out / "train_summary.json").read_text())["steps"] == 1
