"""Tiny random FLUX.1 pipeline directory (``FluxPipeline.from_pretrained`` layout)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from megastyle.testing._common import output_dir, round_up, seeded
from megastyle.testing.clip import CLIP_MAX_LENGTH, tiny_clip_text_config
from megastyle.testing.tokenizers import build_clip_tokenizer, build_t5_tokenizer, t5_vocab_size

FLUX_TEXT_DIM = 32  # CLIP pooled width == T5 d_model == transformer joint/pooled dims
FLUX_LATENT_CHANNELS = 4
FLUX_T5_MAX_LENGTH = 512

# FLUX.1-dev's scheduler_config.json (resolution-dependent shift).
FLUX_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.5,
    "max_shift": 1.15,
    "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
}


def tiny_flux_transformer(guidance_embeds: bool = True, latent_channels: int = FLUX_LATENT_CHANNELS) -> Any:
    """A 1+1-block ``FluxTransformer2DModel`` over 2×2-packed latents (``in_channels = 4 * latent_channels``)."""
    from diffusers import FluxTransformer2DModel

    return FluxTransformer2DModel(
        patch_size=1,
        in_channels=4 * latent_channels,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=FLUX_TEXT_DIM,
        pooled_projection_dim=FLUX_TEXT_DIM,
        guidance_embeds=guidance_embeds,
        axes_dims_rope=(4, 4, 8),
    )


def tiny_flux_vae(latent_channels: int = FLUX_LATENT_CHANNELS) -> Any:
    """A two-level ``AutoencoderKL`` (spatial factor 2) with FLUX's shift/scale and no quant convs."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=4,
        sample_size=32,
        scaling_factor=0.3611,
        shift_factor=0.1159,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )


def tiny_t5_encoder() -> Any:
    """A 2-layer gated-GELU ``T5EncoderModel`` (d_model 32) sized for the offline T5 tokenizer."""
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=round_up(t5_vocab_size()),
        d_model=FLUX_TEXT_DIM,
        d_ff=37,
        d_kv=8,
        num_heads=4,
        num_layers=2,
        num_decoder_layers=2,
        relative_attention_num_buckets=8,
        feed_forward_proj="gated-gelu",
        dropout_rate=0.0,
        is_encoder_decoder=False,
        use_cache=False,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    return T5EncoderModel(config).eval()


def build_tiny_flux_pipeline(
    path: str | os.PathLike[str],
    *,
    seed: int = 0,
    guidance_embeds: bool = True,
    latent_channels: int = FLUX_LATENT_CHANNELS,
) -> Path:
    """Write a tiny FLUX.1(-dev-like) pipeline to ``path``; load it with ``FluxPipeline.from_pretrained``."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline
    from transformers import CLIPTextModel

    out = output_dir(path)
    with seeded(seed):
        transformer = tiny_flux_transformer(guidance_embeds, latent_channels).eval()
        vae = tiny_flux_vae(latent_channels).eval()
        text_encoder = CLIPTextModel(tiny_clip_text_config(FLUX_TEXT_DIM)).eval()
        text_encoder_2 = tiny_t5_encoder()
    pipe = FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER_CONFIG),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=build_clip_tokenizer(model_max_length=CLIP_MAX_LENGTH),
        text_encoder_2=text_encoder_2,
        tokenizer_2=build_t5_tokenizer(model_max_length=FLUX_T5_MAX_LENGTH),
        transformer=transformer,
    )
    pipe.save_pretrained(out)
    return out
