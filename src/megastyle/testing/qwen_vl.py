"""Tiny random Qwen-VL captioners (Qwen2.5-VL or Qwen3-VL) with processor and chat template."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from megastyle.testing._common import output_dir, round_up, seeded
from megastyle.testing.tokenizers import (
    build_qwen2_tokenizer,
    qwen_special_ids,
    qwen_vl_chat_template,
    qwen_vocab_size,
)

QwenVLVariant = Literal["qwen2_5_vl", "qwen3_vl"]
QWEN_VL_VARIANTS: tuple[str, ...] = ("qwen2_5_vl", "qwen3_vl")
QWEN_VL_HIDDEN_SIZE = 32
# Images are resized to at most 4×4 patches before merging → ≤ 4 image tokens each.
_MAX_SIDE_PATCHES = 4


def qwen_special_token_ids() -> dict[str, int]:
    """Config ids of Qwen's special tokens in the offline tokenizer (``image_token_id``, ``eos_token_id`` …)."""
    ids = qwen_special_ids()
    return {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "vision_token_id": ids["<|vision_pad|>"],
        "bos_token_id": ids["<|endoftext|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
    }


def _text_config(hidden_size: int, num_heads: int) -> tuple[dict[str, Any], list[int]]:
    """Text-tower settings shared by both variants, and an mrope section summing to head_dim / 2."""
    ids = qwen_special_token_ids()
    half = hidden_size // num_heads // 2
    spatial = 3 * half // 8  # as in Qwen2.5-VL: head_dim 128 → [16, 24, 24]
    text = {
        "vocab_size": round_up(qwen_vocab_size()),
        "hidden_size": hidden_size,
        "intermediate_size": 2 * hidden_size,
        "num_hidden_layers": 2,
        "num_attention_heads": num_heads,
        "num_key_value_heads": num_heads,
        "max_position_embeddings": 4096,
        "bos_token_id": ids["bos_token_id"],
        "eos_token_id": ids["eos_token_id"],
        "pad_token_id": ids["pad_token_id"],
    }
    return text, [half - 2 * spatial, spatial, spatial]


def tiny_qwen2_5_vl_config(hidden_size: int = QWEN_VL_HIDDEN_SIZE, num_heads: int = 2) -> Any:
    """A 2-layer ``Qwen2_5_VLConfig`` (vision: 2 blocks, patch 14, merge 2) wired to the offline tokenizer."""
    from transformers import Qwen2_5_VLConfig

    ids = qwen_special_token_ids()
    text, section = _text_config(hidden_size, num_heads)
    text["rope_parameters"] = {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": section}
    vision = {
        "depth": 2,
        "hidden_size": hidden_size,
        "intermediate_size": 2 * hidden_size,
        "num_heads": 2,
        "out_hidden_size": hidden_size,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 56,
        "fullatt_block_indexes": [1],
    }
    return Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["image_token_id"],
        video_token_id=ids["video_token_id"],
        vision_start_token_id=ids["vision_start_token_id"],
        vision_end_token_id=ids["vision_end_token_id"],
        tie_word_embeddings=False,
    )


def tiny_qwen3_vl_config(hidden_size: int = QWEN_VL_HIDDEN_SIZE, num_heads: int = 2) -> Any:
    """A 2-layer ``Qwen3VLConfig`` (vision: 2 blocks, patch 16, deepstack at block 0) wired to the tokenizer."""
    from transformers import Qwen3VLConfig

    ids = qwen_special_token_ids()
    text, section = _text_config(hidden_size, num_heads)
    text["head_dim"] = hidden_size // num_heads
    text["rope_parameters"] = {
        "rope_type": "default",
        "rope_theta": 5_000_000.0,
        "mrope_section": section,
        "mrope_interleaved": True,
    }
    vision = {
        "depth": 2,
        "hidden_size": hidden_size,
        "intermediate_size": 2 * hidden_size,
        "num_heads": 2,
        "out_hidden_size": hidden_size,
        "patch_size": 16,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "num_position_embeddings": 64,
        "deepstack_visual_indexes": [0],
    }
    return Qwen3VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["image_token_id"],
        video_token_id=ids["video_token_id"],
        vision_start_token_id=ids["vision_start_token_id"],
        vision_end_token_id=ids["vision_end_token_id"],
        tie_word_embeddings=False,
    )


def build_qwen_vl_processor(variant: QwenVLVariant = "qwen2_5_vl") -> Any:
    """The variant's real processor class (image + video processors, offline tokenizer, chat template)."""
    from transformers import Qwen2VLImageProcessor

    patch = 14 if variant == "qwen2_5_vl" else 16
    unit = patch * 2  # one merged token covers (2 * patch)² pixels
    size = {"shortest_edge": unit * unit, "longest_edge": (unit * _MAX_SIDE_PATCHES // 2) ** 2}
    template = qwen_vl_chat_template("You are a helpful assistant." if variant == "qwen2_5_vl" else None)
    tokenizer = build_qwen2_tokenizer(chat_template=template)
    if variant == "qwen2_5_vl":
        from transformers import Qwen2_5_VLProcessor, Qwen2VLVideoProcessor

        image_processor = Qwen2VLImageProcessor(size=size, patch_size=patch)
        video_processor = Qwen2VLVideoProcessor(size=size, patch_size=patch)
        return Qwen2_5_VLProcessor(image_processor, tokenizer, video_processor, chat_template=template)
    if variant == "qwen3_vl":
        from transformers import Qwen3VLProcessor, Qwen3VLVideoProcessor

        half = [0.5, 0.5, 0.5]
        image_processor = Qwen2VLImageProcessor(size=size, patch_size=patch, image_mean=half, image_std=half)
        video_processor = Qwen3VLVideoProcessor(size=size, patch_size=patch, image_mean=half, image_std=half)
        return Qwen3VLProcessor(image_processor, tokenizer, video_processor, chat_template=template)
    raise ValueError(f"unknown Qwen-VL variant {variant!r}; expected one of {QWEN_VL_VARIANTS}")


def build_tiny_qwen_vl(
    path: str | os.PathLike[str],
    *,
    seed: int = 0,
    variant: QwenVLVariant = "qwen2_5_vl",
) -> Path:
    """Write a tiny Qwen-VL captioner (model, processor, generation config) loadable via ``AutoModelForImageTextToText``."""
    from transformers import (
        GenerationConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen3VLForConditionalGeneration,
    )

    processor = build_qwen_vl_processor(variant)  # validates variant
    out = output_dir(path)
    with seeded(seed):
        if variant == "qwen2_5_vl":
            model = Qwen2_5_VLForConditionalGeneration(tiny_qwen2_5_vl_config()).eval()
        else:
            model = Qwen3VLForConditionalGeneration(tiny_qwen3_vl_config()).eval()
    ids = qwen_special_token_ids()
    model.generation_config = GenerationConfig(
        bos_token_id=ids["bos_token_id"],
        eos_token_id=[ids["eos_token_id"], ids["pad_token_id"]],
        pad_token_id=ids["pad_token_id"],
        do_sample=False,
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
