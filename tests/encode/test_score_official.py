"""``score`` equals the official style_score.py computation on the same weights; the ``score`` CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from PIL import Image
from transformers import AutoProcessor, SiglipVisionModel
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil
from typer.testing import CliRunner

from megastyle.cli.app import app
from megastyle.encode import ScoreCalibration, StyleEncoder, cosine_score, load_official_encoder
from megastyle.testing import random_images, tiny_model_dir


def official_style_score(base: Path, ckpt: Path, real: Path, fake: Path, processor: object) -> float:
    """The official script's logic (FACTS.md): vision tower + load_state_dict(strict=False) + pooled dot."""
    model = SiglipVisionModel.from_pretrained(base).eval()
    checkpoint = torch.load(ckpt, map_location="cpu")
    state = checkpoint["model"] if isinstance(checkpoint, dict) and "model" in checkpoint else checkpoint
    msg = model.load_state_dict(state, strict=False)
    assert msg.missing_keys == []  # the reproduction must really load the weights

    def features(path: Path) -> torch.Tensor:
        inputs = processor(images=[Image.open(path).convert("RGB")], return_tensors="pt")
        with torch.no_grad():
            emb = model(pixel_values=inputs["pixel_values"]).pooler_output
        return emb / emb.norm(p=2, dim=-1, keepdim=True)

    fake_img, real_img = features(fake), features(real)
    return float((fake_img * real_img).sum() / real_img.shape[0])


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("score")
    trained = StyleEncoder.from_pretrained(tiny_model_dir("siglip", seed=1))
    # transformers 5 module names, so the reproduction's plain load_state_dict places every key.
    ckpt = trained.export_official(root / "megastyle_encoder.pth", layout="transformers5")
    trained.save_pretrained(root / "ours")
    a, b = random_images(2, (50, 42), seed=11)
    a.save(root / "a.png")
    b.save(root / "b.jpg", quality=90)
    return {
        "ckpt": ckpt,
        "base": tiny_model_dir("siglip", seed=0),
        "ours": root / "ours",
        "a": root / "a.png",
        "b": root / "b.jpg",
        "root": root,
    }


def _open(path: Path) -> Image.Image:
    return Image.open(path).convert("RGB")


def test_score_equals_official_computation(setup: dict[str, Path]) -> None:
    pil_processor = SiglipImageProcessorPil.from_pretrained(setup["base"])  # transformers-4 default
    expected = official_style_score(setup["base"], setup["ckpt"], setup["a"], setup["b"], pil_processor)
    encoder, report = load_official_encoder(setup["ckpt"], setup["base"])
    assert report.ok
    ours = cosine_score(encoder, _open(setup["a"]), _open(setup["b"]))
    assert ours == pytest.approx(expected, abs=1e-6)
    saved = StyleEncoder.from_pretrained(setup["ours"])
    assert cosine_score(saved, _open(setup["a"]), _open(setup["b"])) == pytest.approx(expected, abs=1e-6)
    # transformers 5's AutoProcessor resizes with torchvision: close to, but not bit-equal with, PIL.
    fast = official_style_score(
        setup["base"], setup["ckpt"], setup["a"], setup["b"], AutoProcessor.from_pretrained(setup["base"])
    )
    assert ours == pytest.approx(fast, abs=2e-2)
    base_score = cosine_score(
        StyleEncoder.from_pretrained(setup["base"]), _open(setup["a"]), _open(setup["b"])
    )
    assert abs(base_score - expected) > 1e-4  # the checkpoint's weights, not the base's, were used


def _app() -> typer.Typer:
    return app


def test_score_cli_prints_the_official_line(setup: dict[str, Path]) -> None:
    expected = cosine_score(StyleEncoder.from_pretrained(setup["ours"]), _open(setup["a"]), _open(setup["b"]))
    runner = CliRunner()
    result = runner.invoke(
        _app(), ["score", str(setup["a"]), str(setup["b"]), "--encoder", str(setup["ours"])]
    )
    assert result.exit_code == 0, result.output
    assert f"=> style score: {expected:.2f}" in result.stdout.splitlines()
    # Options first, images after; official .pth + base; JSON output at full precision.
    result = runner.invoke(
        _app(),
        [
            "score",
            "--official-pth",
            str(setup["ckpt"]),
            "--base-model",
            str(setup["base"]),
            "--json-output",
            str(setup["a"]),
            str(setup["b"]),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["score"] == pytest.approx(expected, abs=1e-6)


def test_score_cli_with_calibration(setup: dict[str, Path]) -> None:
    rng = np.random.default_rng(0)
    calibration = ScoreCalibration.fit(
        rng.normal(size=(200, 32)), labels=rng.integers(0, 10, 200), num_pairs=2000
    )
    path = calibration.save(setup["root"] / "calibration.json")
    result = CliRunner().invoke(
        _app(),
        [
            "score",
            str(setup["a"]),
            str(setup["b"]),
            "--encoder",
            str(setup["ours"]),
            "--calibration",
            str(path),
            "--json-output",
        ],
    )
    assert result.exit_code == 0, result.output
    readout = json.loads(result.stdout.strip().splitlines()[-1])
    assert readout["percentile"] == pytest.approx(calibration.percentile(readout["score"]))
    assert readout["zscore"] == pytest.approx(calibration.zscore(readout["score"]))


def test_score_cli_errors(setup: dict[str, Path]) -> None:
    runner = CliRunner()
    missing = runner.invoke(_app(), ["score", str(setup["a"]), "nope.png", "--encoder", str(setup["ours"])])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    corrupt = setup["root"] / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    bad = runner.invoke(_app(), ["score", str(corrupt), str(setup["b"]), "--encoder", str(setup["ours"])])
    assert bad.exit_code == 2 and "corrupt.png" in bad.output
    no_encoder = runner.invoke(_app(), ["score", str(setup["a"]), str(setup["b"])])
    assert no_encoder.exit_code == 2 and "no encoder" in no_encoder.output
    no_base = runner.invoke(
        _app(), ["score", str(setup["a"]), str(setup["b"]), "--official-pth", str(setup["ckpt"])]
    )
    assert no_base.exit_code == 2 and "--base-model" in no_base.output
