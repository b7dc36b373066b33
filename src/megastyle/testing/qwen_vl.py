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
    """Config ids of the offline tokenizer's special tokens (``image_token_id``, ``eos_token_id``, ...)."""
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


def _text_config(hidden_size: int, num_heads: int, rope_theta: float, **rope: Any) -> dict[str, Any]:
    """Text-tower settings shared by both variants, with an mrope section summing to head_dim / 2."""
    ids = qwen_special_token_ids()
    half = hidden_size // num_heads // 2
    spatial = 3 * half // 8  # as in Qwen2.5-VL: head_dim 128 → [16, 24, 24]
    return {
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
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": rope_theta,
            "mrope_section": [half - 2 * spatial, spatial, spatial],
            **rope,
        },
    }


def _vision_config(hidden_size: int, patch_size: int, **extra: Any) -> dict[str, Any]:
    """Vision-tower settings shared by both variants (2 blocks, 2 heads, merge 2), plus the variant's own."""
    return {
        "depth": 2,
        "hidden_size": hidden_size,
        "intermediate_size": 2 * hidden_size,
        "num_heads": 2,
        "out_hidden_size": hidden_size,
        "patch_size": patch_size,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        **extra,
    }


def _vl_config(config_class: Any, text: dict[str, Any], vision: dict[str, Any]) -> Any:
    """``config_class`` with the towers' settings and the offline tokenizer's vision token ids."""
    ids = qwen_special_token_ids()
    return config_class(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["image_token_id"],
        video_token_id=ids["video_token_id"],
        vision_start_token_id=ids["vision_start_token_id"],
        vision_end_token_id=ids["vision_end_token_id"],
        tie_word_embeddings=False,
    )


def tiny_qwen2_5_vl_config(hidden_size: int = QWEN_VL_HIDDEN_SIZE, num_heads: int = 2) -> Any:
    """A 2-layer ``Qwen2_5_VLConfig`` (vision: 2 blocks, patch 14, merge 2) wired to the offline tokenizer."""
    from transformers import Qwen2_5_VLConfig

    text = _text_config(hidden_size, num_heads, 1_000_000.0)
    vision = _vision_config(hidden_size, 14, window_size=56, fullatt_block_indexes=[1])
    return _vl_config(Qwen2_5_VLConfig, text, vision)


def tiny_qwen3_vl_config(hidden_size: int = QWEN_VL_HIDDEN_SIZE, num_heads: int = 2) -> Any:
    """A 2-layer Qwen3VLConfig (vision: 2 blocks, patch 16, deepstack at block 0) for the tokenizer."""
    from transformers import Qwen3VLConfig

    text = _text_config(hidden_size, num_heads, 5_000_000.0, mrope_interleaved=True)
    text["head_dim"] = hidden_size // num_heads
    vision = _vision_config(hidden_size, 16, num_position_embeddings=64, deepstack_visual_indexes=[0])
    return _vl_config(Qwen3VLConfig, text, vision)


def build_qwen_vl_processor(variant: QwenVLVariant = "qwen2_5_vl") -> Any:
    """The variant's real processor class (image + video processors, offline tokenizer, chat template)."""
    from transformers import Qwen2VLImageProcessor

    if variant == "qwen2_5_vl":
        from transformers import Qwen2_5_VLProcessor as processor_class
        from transformers import Qwen2VLVideoProcessor as video_processor_class

        normalize: dict[str, Any] = {}  # the processor's CLIP mean/std, as Qwen2.5-VL ships it
    elif variant == "qwen3_vl":
        from transformers import Qwen3VLProcessor as processor_class
        from transformers import Qwen3VLVideoProcessor as video_processor_class

        normalize = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
    else:
        raise ValueError(f"unknown Qwen-VL variant {variant!r}; expected one of {QWEN_VL_VARIANTS}")
    patch = 14 if variant == "qwen2_5_vl" else 16
    unit = patch * 2  # one merged token covers (2 * patch)² pixels
    size = {"shortest_edge": unit * unit, "longest_edge": (unit * _MAX_SIDE_PATCHES // 2) ** 2}
    template = qwen_vl_chat_template("You are a helpful assistant." if variant == "qwen2_5_vl" else None)
    tokenizer = build_qwen2_tokenizer(chat_template=template)
    image_processor = Qwen2VLImageProcessor(size=size, patch_size=patch, **normalize)
    video_processor = video_processor_class(size=size, patch_size=patch, **normalize)
    return processor_class(image_processor, tokenizer, video_processor, chat_template=template)


def build_tiny_qwen_vl(
    path: str | os.PathLike[str],
    *,
    seed: int = 0,
    variant: QwenVLVariant = "qwen2_5_vl",
) -> Path:
    """Save a tiny Qwen-VL captioner: model, processor, generation config, for AutoModelForImageTextToText."""
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
