"""Tiny random CLIP (``CLIPModel``) with ``CLIPProcessor``, and the CLIP text config FLUX reuses."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from megastyle.testing._common import output_dir, round_up, seeded
from megastyle.testing.tokenizers import build_clip_tokenizer, clip_vocab_size

CLIP_HIDDEN_SIZE = 32
CLIP_MAX_LENGTH = 77
CLIP_PROJECTION_DIM = 24  # differs from the width so projected and pooled features cannot be confused


def tiny_clip_text_config(hidden_size: int = CLIP_HIDDEN_SIZE, num_layers: int = 2) -> Any:
    """A ``CLIPTextConfig`` matching the offline CLIP tokenizer (bos 0, eos/pad 1, 77 positions)."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=round_up(clip_vocab_size()),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size + 1,
        projection_dim=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        max_position_embeddings=CLIP_MAX_LENGTH,
        hidden_act="gelu",
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )


def tiny_clip_config(
    image_size: int = 32,
    patch_size: int = 8,
    hidden_size: int = CLIP_HIDDEN_SIZE,
    projection_dim: int = CLIP_PROJECTION_DIM,
) -> Any:
    """A ``CLIPConfig`` with 2-layer text and vision towers of width ``hidden_size`` projected to ``projection_dim``."""
    from transformers import CLIPConfig, CLIPVisionConfig

    vision = CLIPVisionConfig(
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size + 1,
        projection_dim=projection_dim,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=image_size,
        patch_size=patch_size,
        hidden_act="gelu",
    )
    text = tiny_clip_text_config(hidden_size)
    text.projection_dim = projection_dim
    return CLIPConfig(
        text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=projection_dim
    )


def build_tiny_clip(
    path: str | os.PathLike[str],
    *,
    seed: int = 0,
    image_size: int = 32,
    patch_size: int = 8,
    hidden_size: int = CLIP_HIDDEN_SIZE,
    projection_dim: int = CLIP_PROJECTION_DIM,
) -> Path:
    """Write a tiny ``CLIPModel`` + ``CLIPProcessor`` (image processor, offline tokenizer) to ``path``."""
    from transformers import CLIPImageProcessor, CLIPModel, CLIPProcessor

    out = output_dir(path)
    with seeded(seed):
        model = CLIPModel(tiny_clip_config(image_size, patch_size, hidden_size, projection_dim)).eval()
    model.save_pretrained(out)
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    tokenizer = build_clip_tokenizer(model_max_length=CLIP_MAX_LENGTH)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)
    return out
