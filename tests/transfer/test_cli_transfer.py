"""``megastyle transfer`` on the tiny FLUX: images named by index and prompt, a sheet, a truthful manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from megastyle.cli.app import app
from megastyle.testing import random_images, tiny_model_dir
from megastyle.transfer import MegaStyleFluxPipeline
from megastyle.transfer.commands import prompt_slug
from megastyle.transfer.lora import kohya_targets, linear_modules

SIZE = 16  # tiny VAE: ×2 → 8×8 latent → 4×4 tokens
COMMON = ["--size", str(SIZE), "--steps", "2", "--max-sequence-length", "16", "--device", "cpu"]


def _app() -> typer.Typer:
    return app


def _styles(folder: Path, n: int = 2) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(random_images(n, (24, 24), seed=7)):
        image.save(folder / f"style{i}.png")
        paths.append(folder / f"style{i}.png")
    return paths


def _run(args: list[str]) -> None:
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def _transfer(tmp_path: Path, out: str, *extra: str, batch: int = 4) -> tuple[Path, dict]:
    config = tmp_path / "transfer.toml"
    config.write_text(
        f'[transfer]\nstyle = ["{tmp_path / "styles"}"]\nprompt = ["a bench", "A red car!"]\n'
        f'model = "{tiny_model_dir("flux")}"\noutput_dir = "{tmp_path / out}"\nseed = 10\n'
    )
    _run(["transfer", "--config", str(config), *COMMON, "--batch-size", str(batch), *extra])
    return tmp_path / out, json.loads((tmp_path / out / "manifest.json").read_text())


def test_transfer_writes_images_sheet_and_manifest(tmp_path: Path) -> None:
    styles = _styles(tmp_path / "styles")
    out, manifest = _transfer(tmp_path, "out")
    names = ["0_a-bench.png", "1_a-red-car.png", "2_a-bench.png", "3_a-red-car.png"]
    assert [e["file"] for e in manifest["images"]] == names
    assert [e["seed"] for e in manifest["images"]] == [10, 11, 12, 13]
    assert [e["style"] for e in manifest["images"]] == [str(styles[0])] * 2 + [str(styles[1])] * 2
    assert manifest["untrained"] is True and manifest["lora"] is None and manifest["rejected"] == []
    assert manifest["settings"]["schedule"] == "official" and manifest["settings"]["steps"] == 2
    for name in names:
        assert Image.open(out / name).size == (SIZE, SIZE)
    sheet = Image.open(out / manifest["sheet"])
    assert sheet.width > 3 * 160 and sheet.height > 2 * 160  # reference + 2 prompt columns, 2 rows
    # Same prompt and seed offset, other reference → another image: the reference reaches the model.
    assert np.abs(_pixels(out / names[0]) - _pixels(out / names[2])).max() > 0

    # The manifest's seed reproduces an image with a direct pipeline call.
    pipe = MegaStyleFluxPipeline.from_pretrained(tiny_model_dir("flux"))
    pipe.set_progress_bar_config(disable=True)
    direct = pipe(
        prompt=["a bench"],
        style_image=Image.open(styles[1]).convert("RGB"),
        height=SIZE,
        width=SIZE,
        num_inference_steps=2,
        schedule="official",
        max_sequence_length=16,
        generator=[torch.Generator().manual_seed(12)],
    ).images[0]
    assert np.abs(np.asarray(direct, dtype=np.int16) - _pixels(out / names[2])).max() <= 1

    # One prompt per call gives the same images as batched calls (per-image generators).
    single, _ = _transfer(tmp_path, "single", batch=1)
    for name in names:
        assert np.abs(_pixels(single / name) - _pixels(out / name)).max() <= 1, name


def _official_lora(path: Path) -> int:
    """A kohya-format LoRA shaped like the tiny transformer's block modules; returns its key count."""
    pipe = MegaStyleFluxPipeline.from_pretrained(tiny_model_dir("flux"))
    linears = linear_modules(pipe.transformer)
    generator = torch.Generator().manual_seed(3)
    tensors = {}
    for group, pieces in kohya_targets(pipe.transformer).items():
        if "_blocks_" not in group:
            continue
        rows = sum(linears[m].out_features for m in pieces)
        tensors[f"{group}.lora_down.weight"] = torch.randn(
            4, linears[pieces[0]].in_features, generator=generator
        )
        tensors[f"{group}.lora_up.weight"] = torch.randn(rows, 4, generator=generator)
        tensors[f"{group}.alpha"] = torch.tensor(4.0)
    save_file(tensors, str(path))
    return len(tensors)


def test_transfer_with_lora_reports_every_key_and_changes_the_images(tmp_path: Path) -> None:
    _styles(tmp_path / "styles")
    keys = _official_lora(tmp_path / "megastyle_flux.safetensors")
    base, _ = _transfer(tmp_path, "base")
    out, manifest = _transfer(tmp_path, "lora", "--lora", str(tmp_path / "megastyle_flux.safetensors"))
    assert manifest["untrained"] is False
    assert manifest["lora"]["placed_keys"] == keys and manifest["lora"]["unplaced"] == {}
    assert np.abs(_pixels(out / "0_a-bench.png") - _pixels(base / "0_a-bench.png")).max() > 2


def test_transfer_skips_unreadable_styles_and_rejects_bad_settings(tmp_path: Path) -> None:
    styles = _styles(tmp_path / "styles", n=1)
    (tmp_path / "styles" / "broken.png").write_bytes(b"not a png")
    out, manifest = _transfer(tmp_path, "out")
    assert [e["style"] for e in manifest["images"]] == [str(styles[0])] * 2
    assert len(manifest["rejected"]) == 1 and "broken.png" in manifest["rejected"][0]["item"]
    assert (out / "1_a-red-car.png").is_file()

    model = str(tiny_model_dir("flux"))
    cases = {
        "style": ["transfer", "--prompt", "a bench", "--model", model],
        "multiple of 4": ["transfer", "--style", str(styles[0]), "--prompt", "a bench", "--model", model,
                          "--size", "18", "--device", "cpu"],
        "FLUX pipeline folder": ["transfer", "--style", str(styles[0]), "--prompt", "a bench",
                                 "--model", str(tmp_path / "nowhere")],
    }  # fmt: skip
    for message, args in cases.items():
        result = CliRunner().invoke(_app(), args)
        assert result.exit_code == 2, (message, result.output)
        assert message in result.output, result.output


@pytest.mark.parametrize(
    ("prompt", "slug"),
    [("A house with a tree beside", "a-house-with-a-tree-beside"), ("  Ünïcode / slashes?  ", "n-code-slashes"),
     ("???", "prompt")],
)  # fmt: skip
def test_prompt_slug_is_file_safe(prompt: str, slug: str) -> None:
    assert prompt_slug(prompt) == slug
