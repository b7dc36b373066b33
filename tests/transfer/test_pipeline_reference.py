"""What the transformer receives: token order, ids, clean reference and timestep at every step (official rule)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from megastyle.testing import random_images, tiny_model_dir
from megastyle.transfer import MegaStyleFluxPipeline
from megastyle.transfer.schedule import official_sigmas

HEIGHT, WIDTH = 16, 24  # tiny VAE: ×2 → 8×12 latent → 4×6 token grid
ROWS, COLS = 4, 6
CALL: dict[str, Any] = {"height": HEIGHT, "width": WIDTH, "max_sequence_length": 16, "output_type": "latent"}


@pytest.fixture(scope="module")
def mega() -> MegaStyleFluxPipeline:
    """The tiny FLUX loaded as a MegaStyle pipeline."""
    pipe = MegaStyleFluxPipeline.from_pretrained(tiny_model_dir("flux"))
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture
def calls(mega: MegaStyleFluxPipeline, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, torch.Tensor]]:
    """Copies of the tensor arguments of every ``transformer.forward`` call during the test."""
    recorded: list[dict[str, torch.Tensor]] = []
    forward = mega.transformer.forward

    def spy(*args: Any, **kwargs: Any) -> Any:
        recorded.append({k: v.detach().clone() for k, v in kwargs.items() if isinstance(v, torch.Tensor)})
        return forward(*args, **kwargs)

    monkeypatch.setattr(mega.transformer, "forward", spy)
    return recorded


def expected_ids() -> tuple[torch.Tensor, torch.Tensor]:
    """Target ids [0, row, col] and the official reference ids [0, row, col + grid width], written out."""
    target = torch.tensor([[0.0, r, c] for r in range(ROWS) for c in range(COLS)])
    reference = torch.tensor([[0.0, r, c + COLS] for r in range(ROWS) for c in range(COLS)])
    return target, reference


def test_transformer_sees_clean_reference_first_at_every_step(
    mega: MegaStyleFluxPipeline, calls: list[dict[str, torch.Tensor]]
) -> None:
    style = random_images(1, size=(60, 40), seed=3)[0]
    steps = 3
    out = mega(
        **CALL, prompt="a bench", style_image=style, num_inference_steps=steps, schedule="official"
    ).images
    clean = mega.encode_reference(style, HEIGHT, WIDTH)
    n_ref = ROWS * COLS
    assert clean.shape == (1, n_ref, 16)
    assert len(calls) == steps
    target_ids, reference_ids = expected_ids()
    shifted = [3 * s / (1 + 2 * s) for s in official_sigmas(steps)]
    for step, call in enumerate(calls):
        assert call["hidden_states"].shape == (1, 2 * n_ref, 16)
        assert torch.equal(call["hidden_states"][:, :n_ref], clean), f"reference not clean at step {step}"
        assert torch.equal(call["img_ids"], torch.cat([reference_ids, target_ids]))
        assert torch.equal(call["txt_ids"], torch.zeros(16, 3))
        # One timestep per sample, shared by reference and target tokens; the official value σ'_i.
        assert call["timestep"].shape == (1,)
        torch.testing.assert_close(call["timestep"], torch.tensor([shifted[step]]), rtol=0, atol=1e-6)
        torch.testing.assert_close(call["guidance"], torch.tensor([3.5]))
    # The target part did move between steps while the reference did not.
    assert not torch.equal(calls[0]["hidden_states"][:, n_ref:], calls[-1]["hidden_states"][:, n_ref:])
    assert out.shape == (1, n_ref, 16)  # only target tokens come back


def test_no_reference_sends_target_tokens_only(
    mega: MegaStyleFluxPipeline, calls: list[dict[str, torch.Tensor]]
) -> None:
    mega(**CALL, prompt="a car", num_inference_steps=2)
    target_ids, _ = expected_ids()
    assert all(call["hidden_states"].shape == (1, ROWS * COLS, 16) for call in calls)
    assert all(torch.equal(call["img_ids"], target_ids) for call in calls)


def test_one_reference_per_prompt_and_per_image(
    mega: MegaStyleFluxPipeline, calls: list[dict[str, torch.Tensor]]
) -> None:
    styles = random_images(2, size=(48, 32), seed=11)
    out = mega(
        **CALL,
        prompt=["a car", "a bench"],
        style_image=styles,
        num_images_per_prompt=2,
        num_inference_steps=2,
    ).images
    clean = mega.encode_reference(styles, HEIGHT, WIDTH)
    n_ref = ROWS * COLS
    assert out.shape == (4, n_ref, 16)
    for call in calls:  # prompt-major: [p0, p0, p1, p1] → references [r0, r0, r1, r1]
        received = call["hidden_states"][:, :n_ref]
        torch.testing.assert_close(received, clean[[0, 0, 1, 1]], rtol=0, atol=1e-6)
        assert not torch.allclose(received[0], received[2])


def test_one_reference_for_several_prompts(
    mega: MegaStyleFluxPipeline, calls: list[dict[str, torch.Tensor]]
) -> None:
    style = random_images(1, seed=4)[0]
    out = mega(
        **CALL, prompt=["a car", "a bench", "a tree"], style_image=[style], num_inference_steps=2
    ).images
    clean = mega.encode_reference(style, HEIGHT, WIDTH)
    assert out.shape[0] == 3
    for call in calls:
        assert torch.equal(call["hidden_states"][:, : ROWS * COLS], clean.expand(3, -1, -1))


def test_several_references_for_one_prompt(mega: MegaStyleFluxPipeline) -> None:
    styles = random_images(3, size=(32, 32), seed=6)
    out = mega(**CALL, prompt="a bench", style_image=styles, num_inference_steps=2).images
    assert out.shape == (3, ROWS * COLS, 16)
    assert not torch.allclose(out[0], out[1])  # same prompt and noise seed path, different styles


def test_reference_count_must_fit_the_prompts(mega: MegaStyleFluxPipeline) -> None:
    styles = random_images(2, seed=1)
    with pytest.raises(ValueError, match="2 style images for 3 prompts"):
        mega(**CALL, prompt=["a", "b", "c"], style_image=styles, num_inference_steps=1)
    with pytest.raises(ValueError, match="unknown schedule"):
        mega(**CALL, prompt="a", style_image=styles[0], schedule="karras")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reference_resize_mode"):
        mega(**CALL, prompt="a", style_image=styles[0], num_inference_steps=1, reference_resize_mode="zoom")


def test_reference_is_encoded_at_the_target_size(mega: MegaStyleFluxPipeline) -> None:
    # A tall reference and a wide target: centre-cropped and resized to the target, so the grids match.
    tall = random_images(1, size=(20, 64), seed=8)[0]
    cropped = mega.encode_reference(tall, HEIGHT, WIDTH)
    stretched = mega.encode_reference(tall, HEIGHT, WIDTH, resize_mode="default")
    assert cropped.shape == stretched.shape == (1, ROWS * COLS, 16)
    assert not torch.allclose(cropped, stretched)
    # Arrays are accepted too ([0, 1] floats, HWC) and cropped the same way as the PIL image.
    array = mega.image_processor.pil_to_numpy(tall)
    torch.testing.assert_close(mega.encode_reference(array, HEIGHT, WIDTH), cropped, rtol=0, atol=1e-6)


def test_references_encoded_once_give_the_same_images(mega: MegaStyleFluxPipeline) -> None:
    styles = random_images(2, size=(32, 32), seed=8)
    prompts = ["a bench", "a car"]
    encoded = mega.encode_reference(styles, HEIGHT, WIDTH, device="cpu")

    def run(**reference: Any) -> torch.Tensor:
        generator = torch.Generator().manual_seed(4)
        return mega(**CALL, prompt=prompts, num_inference_steps=2, generator=generator, **reference).images

    assert torch.equal(run(style_image=styles), run(reference_latents=encoded))
    one = mega.encode_reference(styles[:1], HEIGHT, WIDTH, device="cpu")
    assert torch.equal(
        run(reference_latents=one), run(style_image=styles[0])
    )  # one reference for both prompts
