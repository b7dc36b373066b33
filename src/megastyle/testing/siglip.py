"""Tiny random SigLIP (``SiglipModel``) with processor, saved like a released checkpoint."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from megastyle.testing._common import output_dir, round_up, seeded
from megastyle.testing.tokenizers import build_siglip_tokenizer, siglip_vocab_size

SIGLIP_HIDDEN_SIZE = 32
SIGLIP_TEXT_MAX_LENGTH = 64

# ``train-encoder``'s ``tiny`` tower cut down for tests: one layer, 32 px in patches of 8. Width 384 =
# MiniLM's, so the offline text side needs no bridge.
TINY_TRAIN_TOWER: dict[str, int] = {
    "image_size": 32,
    "patch_size": 8,
    "hidden_size": 384,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 6,
}


def tiny_siglip_config(
    image_size: int = 32, patch_size: int = 8, hidden_size: int = SIGLIP_HIDDEN_SIZE
) -> Any:
    """A ``SiglipConfig`` with 2-layer, 4-head text and vision towers of width ``hidden_size``."""
    from transformers import SiglipConfig

    common = {
        "hidden_size": hidden_size,
        "intermediate_size": 2 * hidden_size + 1,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
    }
    return SiglipConfig(
        text_config={
            **common,
            "vocab_size": round_up(siglip_vocab_size()),
            "max_position_embeddings": SIGLIP_TEXT_MAX_LENGTH,
            "pad_token_id": 1,
            "bos_token_id": None,
            "eos_token_id": 1,
        },
        vision_config={**common, "image_size": image_size, "patch_size": patch_size},
    )


def build_tiny_siglip(
    path: str | os.PathLike[str],
    *,
    seed: int = 0,
    image_size: int = 32,
    patch_size: int = 8,
    hidden_size: int = SIGLIP_HIDDEN_SIZE,
) -> Path:
    """Write a tiny ``SiglipModel`` + ``SiglipProcessor`` (image processor, offline tokenizer) to ``path``."""
    from transformers import SiglipImageProcessor, SiglipModel, SiglipProcessor

    out = output_dir(path)
    with seeded(seed):
        model = SiglipModel(tiny_siglip_config(image_size, patch_size, hidden_size)).eval()
    model.save_pretrained(out)
    image_processor = SiglipImageProcessor(size={"height": image_size, "width": image_size})
    tokenizer = build_siglip_tokenizer(model_max_length=SIGLIP_TEXT_MAX_LENGTH)
    SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)
    return out
