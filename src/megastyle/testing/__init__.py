"""Offline test kit: tiny random models built through the real classes, saved like released checkpoints.

Every builder writes a complete directory (weights, configs, tokenizer/processor) and returns its path,
which loads back with the same ``from_pretrained(local_dir)`` call users run. Nothing is downloaded.
Names are imported lazily so ``import megastyle.testing`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from megastyle._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "build_tiny_siglip": "siglip",
    "tiny_siglip_config": "siglip",
    "TINY_TRAIN_TOWER": "siglip",
    "build_tiny_clip": "clip",
    "tiny_clip_config": "clip",
    "tiny_clip_text_config": "clip",
    "build_tiny_flux_pipeline": "flux",
    "build_tiny_qwen_vl": "qwen_vl",
    "build_qwen_vl_processor": "qwen_vl",
    "tiny_qwen2_5_vl_config": "qwen_vl",
    "tiny_qwen3_vl_config": "qwen_vl",
    "qwen_special_token_ids": "qwen_vl",
    "QWEN_VL_VARIANTS": "qwen_vl",
    "build_tiny_qwen_image_pipeline": "qwen_image",
    "build_clip_tokenizer": "tokenizers",
    "build_t5_tokenizer": "tokenizers",
    "build_siglip_tokenizer": "tokenizers",
    "build_qwen2_tokenizer": "tokenizers",
    "qwen_vl_chat_template": "tokenizers",
    "PROMPT_WORDS": "tokenizers",
    "tiny_model_dir": "cache",
    "default_cache_root": "cache",
    "TINY_MODEL_KINDS": "cache",
    "random_images": "images",
    "load_weights": "weights",
    "assert_same_weights": "weights",
    "assert_different_weights": "weights",
}

__all__ = [
    "PROMPT_WORDS",
    "QWEN_VL_VARIANTS",
    "TINY_MODEL_KINDS",
    "TINY_TRAIN_TOWER",
    "assert_different_weights",
    "assert_same_weights",
    "build_clip_tokenizer",
    "build_qwen2_tokenizer",
    "build_qwen_vl_processor",
    "build_siglip_tokenizer",
    "build_t5_tokenizer",
    "build_tiny_clip",
    "build_tiny_flux_pipeline",
    "build_tiny_qwen_image_pipeline",
    "build_tiny_qwen_vl",
    "build_tiny_siglip",
    "default_cache_root",
    "load_weights",
    "qwen_special_token_ids",
    "qwen_vl_chat_template",
    "random_images",
    "tiny_clip_config",
    "tiny_clip_text_config",
    "tiny_model_dir",
    "tiny_qwen2_5_vl_config",
    "tiny_qwen3_vl_config",
    "tiny_siglip_config",
]

if TYPE_CHECKING:
    from megastyle.testing.cache import TINY_MODEL_KINDS, default_cache_root, tiny_model_dir
    from megastyle.testing.clip import build_tiny_clip, tiny_clip_config, tiny_clip_text_config
    from megastyle.testing.flux import build_tiny_flux_pipeline
    from megastyle.testing.images import random_images
    from megastyle.testing.qwen_image import build_tiny_qwen_image_pipeline
    from megastyle.testing.qwen_vl import (
        QWEN_VL_VARIANTS,
        build_qwen_vl_processor,
        build_tiny_qwen_vl,
        qwen_special_token_ids,
        tiny_qwen2_5_vl_config,
        tiny_qwen3_vl_config,
    )
    from megastyle.testing.siglip import TINY_TRAIN_TOWER, build_tiny_siglip, tiny_siglip_config
    from megastyle.testing.tokenizers import (
        PROMPT_WORDS,
        build_clip_tokenizer,
        build_qwen2_tokenizer,
        build_siglip_tokenizer,
        build_t5_tokenizer,
        qwen_vl_chat_template,
    )
    from megastyle.testing.weights import assert_different_weights, assert_same_weights, load_weights


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)
