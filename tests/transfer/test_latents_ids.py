"""Packing, position ids and token order against diffusers' FluxPipeline and the official MegaStyle rule."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from diffusers import FluxPipeline

from megastyle.transfer.latents import (
    join_reference,
    pack_latents,
    predict_target_velocity,
    reference_ids,
    split_target,
    target_ids,
    token_grid,
    unpack_latents,
)


@pytest.mark.parametrize(("height", "width"), [(8, 8), (8, 12), (16, 4)])
def test_pack_and_unpack_match_diffusers(height: int, width: int) -> None:
    latents = torch.randn(3, 4, height, width, generator=torch.Generator().manual_seed(0))
    packed = pack_latents(latents)
    assert torch.equal(packed, FluxPipeline._pack_latents(latents, 3, 4, height, width))
    # unpack takes pixel sizes; with vae_scale_factor 8 the latent is pixel / 8.
    unpacked = unpack_latents(packed, height * 8, width * 8, vae_scale_factor=8)
    assert torch.equal(unpacked, FluxPipeline._unpack_latents(packed, height * 8, width * 8, 8))
    assert torch.equal(unpacked, latents)


def test_target_ids_match_diffusers() -> None:
    ids = target_ids(16, 24, "cpu", torch.float32)
    assert torch.equal(ids, FluxPipeline._prepare_latent_image_ids(1, 8, 12, "cpu", torch.float32))


def test_reference_ids_follow_the_official_shift() -> None:
    # A 4×6 VAE latent → a 2×3 token grid; the official shift is latent_width // 2 = 3 = grid width.
    expected = torch.tensor(
        [[0, 0, 3], [0, 0, 4], [0, 0, 5], [0, 1, 3], [0, 1, 4], [0, 1, 5]],
        dtype=torch.float32,
    )
    assert torch.equal(reference_ids(4, 6), expected)
    tgt, ref = target_ids(4, 6), reference_ids(4, 6)
    assert torch.equal(ref[:, :2], tgt[:, :2])  # first coordinate 0, same rows
    assert torch.equal(ref[:, 2] - tgt[:, 2], torch.full((6,), 3.0))
    # The reference sits right of the target on the RoPE plane: no position is shared.
    assert not set(map(tuple, ref.tolist())) & set(map(tuple, tgt.tolist()))


def test_ids_honour_device_and_dtype() -> None:
    assert reference_ids(4, 4, "cpu", torch.bfloat16).dtype == torch.bfloat16
    assert target_ids(4, 4, dtype=torch.float16).dtype == torch.float16
    # The meta device stands in for a GPU: ids made on the default device would stay on the CPU.
    assert target_ids(4, 4, "meta").device.type == "meta"
    assert reference_ids(4, 4, "meta").device.type == "meta"


def test_join_casts_the_reference_to_the_target_dtypes() -> None:
    ref, tgt = torch.zeros(1, 4, 8), torch.ones(1, 4, 8, dtype=torch.bfloat16)
    tokens, ids, _ = join_reference(ref, reference_ids(4, 4), tgt, target_ids(4, 4, dtype=torch.bfloat16))
    assert tokens.dtype == torch.bfloat16 and ids.dtype == torch.bfloat16


def test_join_puts_reference_before_target() -> None:
    ref, tgt = torch.zeros(2, 6, 8), torch.ones(2, 6, 8)
    tokens, ids, n_ref = join_reference(ref, reference_ids(4, 6), tgt, target_ids(4, 6))
    assert n_ref == 6 and tokens.shape == (2, 12, 8) and ids.shape == (12, 3)
    assert torch.equal(tokens[:, :6], ref) and torch.equal(tokens[:, 6:], tgt)
    assert torch.equal(ids[:6], reference_ids(4, 6)) and torch.equal(ids[6:], target_ids(4, 6))
    assert torch.equal(split_target(tokens, n_ref), tgt)


def test_bad_shapes_are_rejected_with_the_cause() -> None:
    with pytest.raises(
        ValueError,
        match=r"^latent size 5x4 must be even for 2x2 packing \(image sizes must be multiples of 2 \* vae_scale_factor\)$",
    ):
        token_grid(5, 4)
    with pytest.raises(ValueError, match="expects"):
        pack_latents(torch.zeros(4, 8, 8))
    with pytest.raises(ValueError, match="cannot unpack"):
        unpack_latents(torch.zeros(1, 10, 16), 32, 32, 2)
    with pytest.raises(ValueError, match=r"^reference batch 1 does not match target batch 2$"):
        join_reference(torch.zeros(1, 5, 8), reference_ids(4, 6), torch.zeros(2, 6, 8), target_ids(4, 6))
    with pytest.raises(ValueError, match=r"^reference features 7 != target features 8$"):
        join_reference(torch.zeros(2, 6, 7), reference_ids(4, 6), torch.zeros(2, 6, 8), target_ids(4, 6))
    with pytest.raises(ValueError, match="ids do not match"):
        join_reference(torch.zeros(2, 4, 8), reference_ids(4, 6), torch.zeros(2, 6, 8), target_ids(4, 6))


class RecordingTransformer(torch.nn.Module):
    """Returns its hidden states + 1 and remembers the keyword arguments it was called with."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []

    def forward(self, **kwargs: Any) -> tuple[torch.Tensor]:
        self.calls.append(kwargs)
        return (kwargs["hidden_states"] + 1,)


def test_velocity_helper_feeds_reference_first_and_returns_target_only() -> None:
    transformer = RecordingTransformer()
    latents, reference = torch.randn(2, 6, 8), torch.randn(2, 6, 8)
    text = torch.zeros(5, 3)
    prompt, pooled, timestep = torch.randn(2, 5, 4), torch.randn(2, 4), torch.full((2,), 0.7)
    out = predict_target_velocity(transformer, latents, reference, timestep, prompt, pooled, text, None, 4, 6)
    call = transformer.calls[-1]
    assert torch.equal(out, latents + 1)  # target tokens only
    assert torch.equal(call["hidden_states"][:, :6], reference)
    assert torch.equal(call["img_ids"], torch.cat([reference_ids(4, 6), target_ids(4, 6)]))
    assert call["txt_ids"] is text and call["timestep"] is timestep
    assert call["encoder_hidden_states"] is prompt and call["pooled_projections"] is pooled
    assert (
        call["guidance"] is None and call["joint_attention_kwargs"] is None and call["return_dict"] is False
    )
    assert call["img_ids"].dtype == prompt.dtype

    # Guidance, attention kwargs and the ids' dtype and device are passed through as given.
    guidance, attention = torch.full((2,), 3.5), {"scale": 0.5}
    half = prompt.to(torch.bfloat16)
    predict_target_velocity(
        transformer, latents, reference, timestep, half, pooled, text, guidance, 4, 6, attention
    )
    call = transformer.calls[-1]
    assert call["guidance"] is guidance and call["joint_attention_kwargs"] is attention
    assert call["img_ids"].dtype == torch.bfloat16
    meta = torch.empty(2, 6, 8, device="meta")
    predict_target_velocity(transformer, meta, meta, timestep, prompt, pooled, text, None, 4, 6)
    assert transformer.calls[-1]["img_ids"].device.type == "meta"

    plain = predict_target_velocity(transformer, latents, None, timestep, prompt, pooled, text, None, 4, 6)
    assert torch.equal(plain, latents + 1)
    assert transformer.calls[-1]["hidden_states"] is latents
    assert torch.equal(transformer.calls[-1]["img_ids"], target_ids(4, 6))
