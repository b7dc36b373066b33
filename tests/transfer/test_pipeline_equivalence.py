"""MegaStyleFluxPipeline vs diffusers' FluxPipeline and vs itself (batched vs one by one) on the tiny FLUX."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from diffusers import FluxPipeline

from megastyle.testing import random_images, tiny_model_dir
from megastyle.transfer import MegaStyleFluxPipeline

# 2 steps at 16×24 (a non-square 4×6 token grid) keep every call well under a second.
CALL: dict[str, Any] = {"height": 16, "width": 24, "num_inference_steps": 2, "max_sequence_length": 16}
PROMPTS = ["a red car on a street", "a bench", "a house with a tree beside"]


@pytest.fixture(scope="module")
def pipes() -> tuple[FluxPipeline, MegaStyleFluxPipeline]:
    """Both pipelines loaded from the same tiny FLUX directory."""
    path = tiny_model_dir("flux")
    base, mega = FluxPipeline.from_pretrained(path), MegaStyleFluxPipeline.from_pretrained(path).to("cpu")
    for pipe in (base, mega):
        pipe.set_progress_bar_config(disable=True)
    return base, mega


def generators(n: int, offset: int = 0) -> list[torch.Generator]:
    """One seeded CPU generator per image."""
    return [torch.Generator().manual_seed(offset + i) for i in range(n)]


@pytest.mark.parametrize("output_type", ["np", "latent"])
def test_without_reference_equals_flux_pipeline(
    pipes: tuple[FluxPipeline, MegaStyleFluxPipeline], output_type: str
) -> None:
    base, mega = pipes
    kwargs = {**CALL, "prompt": PROMPTS[:2], "num_images_per_prompt": 2, "output_type": output_type}
    expected = base(**kwargs, generator=torch.Generator().manual_seed(7)).images
    got = mega(**kwargs, generator=torch.Generator().manual_seed(7)).images
    assert isinstance(mega, MegaStyleFluxPipeline)
    if output_type == "latent":
        assert torch.equal(got, expected)
    else:
        assert got.shape == (4, 16, 24, 3)
        assert np.abs(got - expected).max() == 0.0


def test_without_reference_equals_flux_pipeline_with_guidance_and_pil(
    pipes: tuple[FluxPipeline, MegaStyleFluxPipeline],
) -> None:
    base, mega = pipes
    kwargs = {**CALL, "prompt": PROMPTS[2], "guidance_scale": 1.0, "num_inference_steps": 3}
    expected = base(**kwargs, generator=torch.Generator().manual_seed(3)).images[0]
    got = mega(**kwargs, generator=torch.Generator().manual_seed(3)).images[0]
    assert got.size == (24, 16) and np.array_equal(np.asarray(got), np.asarray(expected))


def test_reference_changes_the_output(pipes: tuple[FluxPipeline, MegaStyleFluxPipeline]) -> None:
    _, mega = pipes
    style = random_images(2, size=(48, 32), seed=5)
    kwargs = {**CALL, "prompt": PROMPTS[0], "output_type": "np"}
    plain = mega(**kwargs, generator=torch.Generator().manual_seed(0)).images
    styled = mega(**kwargs, style_image=style[0], generator=torch.Generator().manual_seed(0)).images
    other = mega(**kwargs, style_image=style[1], generator=torch.Generator().manual_seed(0)).images
    assert np.abs(styled - plain).max() > 1e-3
    assert np.abs(styled - other).max() > 1e-4  # a different style image gives a different image


def test_batch_equals_items_run_one_by_one(pipes: tuple[FluxPipeline, MegaStyleFluxPipeline]) -> None:
    _, mega = pipes
    styles = random_images(3, size=(40, 40), seed=9)
    batch = mega(
        **CALL, prompt=PROMPTS, style_image=styles, generator=generators(3), output_type="latent"
    ).images
    assert batch.shape == (3, 4 * 6, 16)
    for i in range(3):
        single = mega(
            **CALL, prompt=PROMPTS[i], style_image=styles[i], generator=generators(1, i), output_type="latent"
        ).images
        torch.testing.assert_close(single[0], batch[i], rtol=0, atol=1e-5)


def test_images_per_prompt_equal_items_run_one_by_one(
    pipes: tuple[FluxPipeline, MegaStyleFluxPipeline],
) -> None:
    _, mega = pipes
    style = random_images(1, seed=2)[0]
    batch = mega(
        **CALL,
        prompt=PROMPTS[:2],
        style_image=style,
        num_images_per_prompt=2,
        generator=generators(4),
        output_type="latent",
    ).images
    # Images are prompt-major: [p0 g0, p0 g1, p1 g2, p1 g3].
    for i, prompt in enumerate([PROMPTS[0], PROMPTS[0], PROMPTS[1], PROMPTS[1]]):
        single = mega(
            **CALL, prompt=prompt, style_image=style, generator=generators(1, i), output_type="latent"
        )
        torch.testing.assert_close(single.images[0], batch[i], rtol=0, atol=1e-5)
