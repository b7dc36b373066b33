"""Tiny random Qwen-Image text-to-image pipeline directory (``QwenImagePipeline.from_pretrained`` layout)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from megastyle.testing._common import output_dir, seeded
from megastyle.testing.qwen_vl import tiny_qwen2_5_vl_config
from megastyle.testing.tokenizers import build_qwen2_tokenizer

QWEN_IMAGE_TEXT_DIM = 16  # text-encoder hidden size == transformer joint_attention_dim
QWEN_IMAGE_Z_DIM = 4

# Qwen-Image's scheduler_config.json (exponential time shift, resolution-dependent).
QWEN_IMAGE_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "use_dynamic_shifting": True,
    "base_shift": math.log(3),
    "max_shift": math.log(3),
    "base_image_seq_len": 256,
    "max_image_seq_len": 8192,
    "shift_terminal": 0.02,
    "time_shift_type": "exponential",
}


def tiny_qwen_image_transformer(z_dim: int = QWEN_IMAGE_Z_DIM) -> Any:
    """A 2-block ``QwenImageTransformer2DModel`` (3 heads of 16) over 2×2-packed ``z_dim`` latents."""
    from diffusers import QwenImageTransformer2DModel

    return QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=4 * z_dim,
        out_channels=z_dim,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=3,
        joint_attention_dim=QWEN_IMAGE_TEXT_DIM,
        guidance_embeds=False,
        axes_dims_rope=(8, 4, 4),
    )


def tiny_qwen_image_vae(z_dim: int = QWEN_IMAGE_Z_DIM) -> Any:
    """A three-level ``AutoencoderKLQwenImage`` (spatial factor 4) with identity latent statistics."""
    from diffusers import AutoencoderKLQwenImage

    return AutoencoderKLQwenImage(
        base_dim=2 * z_dim,
        z_dim=z_dim,
        dim_mult=[1, 2, 4],
        num_res_blocks=1,
        temperal_downsample=[False, True],
        latents_mean=[0.0] * z_dim,
        latents_std=[1.0] * z_dim,
    )


def build_tiny_qwen_image_pipeline(path: str | os.PathLike[str], *, seed: int = 0) -> Path:
    """Write a tiny Qwen-Image pipeline to ``path``; load it with ``QwenImagePipeline.from_pretrained``."""
    from diffusers import FlowMatchEulerDiscreteScheduler, QwenImagePipeline
    from transformers import Qwen2_5_VLForConditionalGeneration

    out = output_dir(path)
    with seeded(seed):
        transformer = tiny_qwen_image_transformer().eval()
        vae = tiny_qwen_image_vae().eval()
        config = tiny_qwen2_5_vl_config(hidden_size=QWEN_IMAGE_TEXT_DIM, num_heads=2)
        text_encoder = Qwen2_5_VLForConditionalGeneration(config).eval()
    pipe = QwenImagePipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**QWEN_IMAGE_SCHEDULER_CONFIG),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=build_qwen2_tokenizer(),
        transformer=transformer,
    )
    pipe.save_pretrained(out)
    return out
