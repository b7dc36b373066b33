"""Commands that write keep to their own outputs: a user's folder is refused, an existing output is
reused, refused or replaced only as the options say."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from megastyle.cli.app import app
from megastyle.testing import random_images, tiny_model_dir

runner = CliRunner()


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


@pytest.fixture
def user_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    (folder / "0_a-bench.png").write_bytes(b"my own picture")  # the name transfer would write
    return folder


def _images(folder: Path, styles: int = 2, per_style: int = 3) -> Path:
    for s in range(styles):
        (folder / f"style{s}").mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(random_images(per_style, (24, 24), seed=s)):
            image.save(folder / f"style{s}" / f"{i}.png")
    return folder


@pytest.mark.parametrize(
    "command",
    [
        lambda out, t: ["render", "--output-dir", str(out), "--num-styles", "2", "--num-content-prompts", "2",
                        "--contents-per-style", "1", "--image-size", "16"],
        lambda out, t: ["transfer", "--style", str(_images(t / "refs", 1, 1) / "style0" / "0.png"), "--prompt",
                        "A bench", "--model", str(tiny_model_dir("flux")), "--size", "16", "--steps", "1",
                        "--max-sequence-length", "16", "--output-dir", str(out)],
        lambda out, t: ["quickstart", "--output-dir", str(out)],
        lambda out, t: ["import", str(_images(t / "imgs")), "--output-dir", str(out)],
    ],
    ids=["render", "transfer", "quickstart", "import"],
)  # fmt: skip
def test_a_users_folder_is_refused_and_left_as_it_was(command, user_folder: Path, tmp_path: Path) -> None:
    before = _digest(user_folder)
    result = runner.invoke(app, command(user_folder, tmp_path))
    assert result.exit_code == 2, result.output
    assert f"{user_folder}: not empty" in result.output and "notes.txt" in result.output
    assert _digest(user_folder) == before


def test_embed_reuses_its_own_output_and_replaces_another_only_when_asked(tmp_path: Path) -> None:
    first, second = _images(tmp_path / "a"), _images(tmp_path / "b", styles=3)
    out = tmp_path / "emb" / "x.safetensors"
    base = ["embed", "--encoder", str(tiny_model_dir("siglip")), "--output", str(out), "--progress", "false"]
    assert runner.invoke(app, [*base, str(first)]).exit_code == 0
    again = runner.invoke(app, [*base, str(first)])
    assert again.exit_code == 0 and "already holds these 6 embeddings" in again.output
    other = runner.invoke(app, [*base, str(second)])
    assert other.exit_code == 2 and f"{out}: already holds embeddings of another source" in other.output
    replaced = runner.invoke(app, [*base, str(second), "--overwrite", "true"])
    assert replaced.exit_code == 0 and "9 embeddings" in replaced.output
