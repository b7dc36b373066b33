"""Tiny FLUX and Qwen-Image pipeline directories load with ``from_pretrained`` and generate images."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderKLQwenImage,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    QwenImagePipeline,
    QwenImageTransformer2DModel,
)
from transformers import CLIPTextModel, CLIPTokenizer, Qwen2_5_VLForConditionalGeneration, Qwen2Tokenizer

from megastyle.testing import (
    assert_different_weights,
    assert_same_weights,
    build_tiny_flux_pipeline,
    build_tiny_qwen_image_pipeline,
)

PROMPT = "a watercolor painting of a cat"


def _run(
    pipe: FluxPipeline | QwenImagePipeline, prompt: str | list[str], seed: int, **kwargs: object
) -> np.ndarray:
    """Two-step 32×32 numpy generation with a seeded CPU generator."""
    options = {"num_inference_steps": 2, "height": 32, "width": 32, "output_type": "np"} | kwargs
    return pipe(prompt=prompt, generator=torch.Generator().manual_seed(seed), **options).images


@pytest.fixture(scope="module")
def flux(tiny_model: Callable[..., Path]) -> FluxPipeline:
    pipe = FluxPipeline.from_pretrained(tiny_model("flux"))
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def qwen_image(tiny_model: Callable[..., Path]) -> QwenImagePipeline:
    pipe = QwenImagePipeline.from_pretrained(tiny_model("qwen_image"))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_flux_components_are_the_real_classes(flux: FluxPipeline) -> None:
    assert isinstance(flux.transformer, FluxTransformer2DModel)
    assert isinstance(flux.vae, AutoencoderKL)
    assert isinstance(flux.text_encoder, CLIPTextModel)
    assert type(flux.text_encoder_2).__name__ == "T5EncoderModel"
    assert isinstance(flux.tokenizer, CLIPTokenizer)
    assert type(flux.tokenizer_2).__name__ == "T5Tokenizer"
    assert isinstance(flux.scheduler, FlowMatchEulerDiscreteScheduler)
    assert flux.tokenizer.model_max_length == 77
    assert len(flux.tokenizer) <= flux.text_encoder.config.vocab_size
    assert len(flux.tokenizer_2) <= flux.text_encoder_2.config.vocab_size
    assert flux.transformer.config.in_channels == 4 * flux.vae.config.latent_channels
    assert not flux.text_encoder_2.training and not flux.transformer.training


def test_flux_generates_reproducible_images(flux: FluxPipeline) -> None:
    first = _run(flux, PROMPT, seed=0)
    assert first.shape == (1, 32, 32, 3)
    assert first.dtype == np.float32 and first.min() >= 0.0 and first.max() <= 1.0
    np.testing.assert_array_equal(_run(flux, PROMPT, seed=0), first)
    assert np.abs(_run(flux, PROMPT, seed=1) - first).max() > 1e-3


def test_flux_batch_and_non_square_size(flux: FluxPipeline) -> None:
    images = _run(flux, [PROMPT, "an ink sketch of a dog"], seed=0, height=48, width=32, guidance_scale=3.5)
    assert images.shape == (2, 48, 32, 3)
    assert np.abs(images[0] - images[1]).max() > 0


def test_qwen_image_components_are_the_real_classes(qwen_image: QwenImagePipeline) -> None:
    assert isinstance(qwen_image.transformer, QwenImageTransformer2DModel)
    assert isinstance(qwen_image.vae, AutoencoderKLQwenImage)
    assert isinstance(qwen_image.text_encoder, Qwen2_5_VLForConditionalGeneration)
    assert isinstance(qwen_image.tokenizer, Qwen2Tokenizer)
    assert (
        qwen_image.transformer.config.joint_attention_dim
        == qwen_image.text_encoder.config.text_config.hidden_size
    )
    assert len(qwen_image.tokenizer) <= qwen_image.text_encoder.config.text_config.vocab_size


def test_qwen_image_prompt_embeddings_drop_only_the_template(qwen_image: QwenImagePipeline) -> None:
    embeds, _ = qwen_image.encode_prompt(PROMPT, device="cpu")
    n_prompt = len(qwen_image.tokenizer(PROMPT).input_ids)
    suffix = len(qwen_image.tokenizer("<|im_end|>\n<|im_start|>assistant\n").input_ids)
    assert embeds.shape == (1, n_prompt + suffix, 16)


def test_qwen_image_generates_reproducible_images(qwen_image: QwenImagePipeline) -> None:
    first = _run(qwen_image, PROMPT, seed=0)
    assert first.shape == (1, 32, 32, 3)
    np.testing.assert_array_equal(_run(qwen_image, PROMPT, seed=0), first)
    assert np.abs(_run(qwen_image, PROMPT, seed=1) - first).max() > 1e-3
    assert np.abs(_run(qwen_image, "an ink sketch of two dogs", seed=0) - first).max() > 0


def test_qwen_image_true_cfg_batch(qwen_image: QwenImagePipeline) -> None:
    images = _run(
        qwen_image,
        [PROMPT, "a red apple"],
        seed=0,
        negative_prompt=["bad", "ugly"],
        true_cfg_scale=4.0,
        width=48,
    )
    assert images.shape == (2, 32, 48, 3)
    assert np.isfinite(images).all()


@pytest.mark.parametrize(
    "build", [build_tiny_flux_pipeline, build_tiny_qwen_image_pipeline], ids=["flux", "qwen_image"]
)
def test_pipeline_builds_are_deterministic_per_seed(build: Callable[..., Path], tmp_path: Path) -> None:
    a = build(tmp_path / "a", seed=7)
    b = build(tmp_path / "b", seed=7)
    assert_same_weights(a, b)
    assert_different_weights(a, build(tmp_path / "c", seed=8))
    assert (a / "model_index.json").read_text() == (b / "model_index.json").read_text()
