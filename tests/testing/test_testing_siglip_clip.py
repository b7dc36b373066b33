"""Tiny SigLIP and CLIP directories load through the user-facing classes and run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from transformers import (
    AutoProcessor,
    CLIPModel,
    CLIPProcessor,
    CLIPVisionModelWithProjection,
    SiglipModel,
    SiglipProcessor,
    SiglipVisionModel,
)

from megastyle.testing import (
    assert_different_weights,
    assert_same_weights,
    build_tiny_clip,
    build_tiny_siglip,
    random_images,
)

TEXTS = ["a watercolor painting of a cat", "an oil painting of two dogs"]


def test_siglip_full_model_forward(tiny_model: Callable[..., Path]) -> None:
    directory = tiny_model("siglip")
    processor = AutoProcessor.from_pretrained(directory)
    assert isinstance(processor, SiglipProcessor)
    model = SiglipModel.from_pretrained(directory)
    assert not model.training
    inputs = processor(
        text=TEXTS, images=random_images(2, (50, 40)), padding="max_length", return_tensors="pt"
    )
    assert inputs["input_ids"].shape == (2, 64)
    assert inputs["pixel_values"].shape == (2, 3, 32, 32)
    assert int(inputs["input_ids"].max()) < model.config.text_config.vocab_size
    with torch.no_grad():
        out = model(**inputs)
    assert out.logits_per_image.shape == (2, 2)
    assert out.image_embeds.shape == out.text_embeds.shape == (2, 32)
    assert torch.isfinite(out.logits_per_image).all()


def test_siglip_vision_tower_loads_from_full_checkpoint(tiny_model: Callable[..., Path]) -> None:
    directory = tiny_model("siglip")
    full = SiglipModel.from_pretrained(directory)
    vision = SiglipVisionModel.from_pretrained(directory)
    pixels = AutoProcessor.from_pretrained(directory)(images=random_images(3), return_tensors="pt")[
        "pixel_values"
    ]
    with torch.no_grad():
        pooled = vision(pixel_values=pixels).pooler_output
        expected = full.vision_model(pixel_values=pixels).pooler_output
        tokens = vision(pixel_values=pixels).last_hidden_state
    assert pooled.shape == (3, 32)
    assert tokens.shape == (3, 16, 32)  # (32 / 8)² patches
    torch.testing.assert_close(pooled, expected, rtol=0, atol=0)
    assert pooled.std() > 0  # really random weights, not zeros


def test_clip_full_and_vision_models(tiny_model: Callable[..., Path]) -> None:
    directory = tiny_model("clip")
    processor = AutoProcessor.from_pretrained(directory)
    assert isinstance(processor, CLIPProcessor)
    model = CLIPModel.from_pretrained(directory)
    inputs = processor(text=TEXTS, images=random_images(2, (20, 30)), padding=True, return_tensors="pt")
    assert inputs["pixel_values"].shape == (2, 3, 32, 32)
    with torch.no_grad():
        out = model(**inputs)
        vision = CLIPVisionModelWithProjection.from_pretrained(directory)
        image_embeds = vision(pixel_values=inputs["pixel_values"]).image_embeds
    assert out.logits_per_text.shape == (2, 2)
    assert out.text_embeds.shape == out.image_embeds.shape == (2, 24)  # projection_dim, not the width 32
    normalized = image_embeds / image_embeds.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(normalized, out.image_embeds)


@pytest.mark.parametrize("build", [build_tiny_siglip, build_tiny_clip], ids=["siglip", "clip"])
def test_builds_are_deterministic_per_seed(build: Callable[..., Path], tmp_path: Path) -> None:
    a = build(tmp_path / "a", seed=3)
    b = build(tmp_path / "b", seed=3)
    c = build(tmp_path / "c", seed=4)
    assert_same_weights(a, b)
    assert_different_weights(a, c)
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()


def test_builders_leave_global_rng_alone(tmp_path: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    build_tiny_siglip(tmp_path)
    torch.testing.assert_close(torch.rand(4), expected)
