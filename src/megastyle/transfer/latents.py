"""Latent packing, RoPE position ids and token order for MegaStyle-FLUX (shared by inference and training).

Sizes follow diffusers' ``FluxPipeline``: a VAE latent of ``latent_height × latent_width`` (the image size
divided by ``vae_scale_factor``) is cut into 2×2 patches, giving a token grid of
``(latent_height // 2) × (latent_width // 2)`` tokens with ``4 × channels`` features each.

Position ids are ``(tokens, 3)`` tensors ``[index, row, col]`` in token-grid units, as diffusers' Flux
transformer expects (2-D ``img_ids``; text ids are all zeros and passed separately as ``txt_ids``, and the
transformer concatenates them as ``[txt_ids, img_ids]``, so passing ``img_ids = [reference, target]`` gives
the official order text, reference, target).

The official rule (Tencent/MegaStyle ``flux_image_mega.py`` on DiffSynth-Studio): the reference is encoded at
the target size, its ids are the target's ids with the column coordinate shifted by ``latent_width // 2``
(DiffSynth's ``latent_width`` is the unpacked VAE latent width, so the shift equals the token-grid width: the
reference sits immediately to the right of the target on the RoPE plane), first coordinate 0, and its tokens
go BEFORE the target tokens. diffusers' ``FluxKontextPipeline`` differs: it marks reference ids with first
coordinate 1, does not shift columns, and appends the reference AFTER the target.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = [
    "join_reference",
    "pack_latents",
    "predict_target_velocity",
    "reference_ids",
    "split_target",
    "target_ids",
    "token_grid",
    "unpack_latents",
]


def token_grid(latent_height: int, latent_width: int) -> tuple[int, int]:
    """Token-grid (rows, cols) of a VAE latent after 2×2 packing; both sizes must be even."""
    if latent_height % 2 or latent_width % 2:
        raise ValueError(
            f"latent size {latent_height}x{latent_width} must be even for 2x2 packing "
            "(image sizes must be multiples of 2 * vae_scale_factor)"
        )
    return latent_height // 2, latent_width // 2


def pack_latents(latents: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) VAE latents → (B, H/2·W/2, 4C) tokens, row-major over the token grid (as diffusers)."""
    if latents.ndim != 4:
        raise ValueError(f"pack_latents expects (B, C, H, W) latents, got shape {tuple(latents.shape)}")
    batch, channels, height, width = latents.shape
    rows, cols = token_grid(height, width)
    patches = latents.view(batch, channels, rows, 2, cols, 2).permute(0, 2, 4, 1, 3, 5)
    return patches.reshape(batch, rows * cols, channels * 4)


def unpack_latents(tokens: torch.Tensor, height: int, width: int, vae_scale_factor: int) -> torch.Tensor:
    """(B, N, 4C) tokens of an image of ``height × width`` pixels → (B, C, H, W) VAE latents (as diffusers)."""
    batch, num_tokens, features = tokens.shape
    # Same rounding as diffusers: latent sizes are forced even so they pack into whole 2×2 patches.
    latent_height = 2 * (int(height) // (vae_scale_factor * 2))
    latent_width = 2 * (int(width) // (vae_scale_factor * 2))
    rows, cols = latent_height // 2, latent_width // 2
    if num_tokens != rows * cols or features % 4:
        raise ValueError(
            f"cannot unpack {num_tokens} tokens of {features} features into a {rows}x{cols} grid "
            f"for a {height}x{width} image (vae_scale_factor={vae_scale_factor})"
        )
    grid = tokens.view(batch, rows, cols, features // 4, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return grid.reshape(batch, features // 4, latent_height, latent_width)


def target_ids(
    latent_height: int,
    latent_width: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Ids of the target tokens: ``[0, row, col]`` over the token grid, shape (rows·cols, 3), as diffusers."""
    rows, cols = token_grid(latent_height, latent_width)
    ids = torch.zeros(rows, cols, 3)
    ids[..., 1] = torch.arange(rows)[:, None]
    ids[..., 2] = torch.arange(cols)[None, :]
    return ids.reshape(rows * cols, 3).to(device=device, dtype=dtype)


def reference_ids(
    latent_height: int,
    latent_width: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Official reference ids: target ids with ``col + latent_width // 2`` (= token-grid width), first coord 0."""
    ids = target_ids(latent_height, latent_width, device=None, dtype=None)
    ids[:, 2] += latent_width // 2
    return ids.to(device=device, dtype=dtype)


def join_reference(
    ref_tokens: torch.Tensor, ref_ids: torch.Tensor, target_tokens: torch.Tensor, target_ids: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Put the reference BEFORE the target: → (tokens (B, n_ref + n_tgt, D), ids (n_ref + n_tgt, 3), n_ref)."""
    if ref_tokens.shape[0] != target_tokens.shape[0]:
        raise ValueError(
            f"reference batch {ref_tokens.shape[0]} does not match target batch {target_tokens.shape[0]}"
        )
    if ref_tokens.shape[2] != target_tokens.shape[2]:
        raise ValueError(
            f"reference features {ref_tokens.shape[2]} != target features {target_tokens.shape[2]}"
        )
    if ref_ids.shape[0] != ref_tokens.shape[1] or target_ids.shape[0] != target_tokens.shape[1]:
        raise ValueError(
            f"ids do not match tokens: reference {tuple(ref_ids.shape)} vs {tuple(ref_tokens.shape)}, "
            f"target {tuple(target_ids.shape)} vs {tuple(target_tokens.shape)}"
        )
    tokens = torch.cat([ref_tokens.to(target_tokens.dtype), target_tokens], dim=1)
    ids = torch.cat([ref_ids.to(target_ids.dtype), target_ids], dim=0)
    return tokens, ids, ref_tokens.shape[1]


def split_target(tokens: torch.Tensor, n_ref: int) -> torch.Tensor:
    """Drop the first ``n_ref`` (reference) tokens of a joined sequence: only target tokens are returned."""
    return tokens[:, n_ref:]


def predict_target_velocity(
    transformer: torch.nn.Module,
    latents: torch.Tensor,
    reference: torch.Tensor | None,
    timestep: torch.Tensor,
    prompt_embeds: torch.Tensor,
    pooled_prompt_embeds: torch.Tensor,
    text_ids: torch.Tensor,
    guidance: torch.Tensor | None,
    latent_height: int,
    latent_width: int,
    joint_attention_kwargs: dict[str, Any] | None = None,
) -> torch.Tensor:
    """One FLUX transformer pass over [clean reference, noisy target] → velocity of the target tokens only.

    ``latents`` are packed target tokens (B, N, D); ``reference`` packed clean reference tokens (B, N_ref, D) or
    None (then the call is exactly FluxPipeline's); ``timestep`` is in the transformer's units (σ in [0, 1],
    i.e. the scheduler timestep / 1000) and is shared by the reference tokens, as in the official code.
    Inference and training both call this, so their token order and ids cannot disagree.
    """
    ids = target_ids(latent_height, latent_width, latents.device, prompt_embeds.dtype)
    hidden_states, n_ref = latents, 0
    if reference is not None:
        ref_ids = reference_ids(latent_height, latent_width, latents.device, prompt_embeds.dtype)
        hidden_states, ids, n_ref = join_reference(reference, ref_ids, latents, ids)
    velocity = transformer(
        hidden_states=hidden_states,
        timestep=timestep,
        guidance=guidance,
        pooled_projections=pooled_prompt_embeds,
        encoder_hidden_states=prompt_embeds,
        txt_ids=text_ids,
        img_ids=ids,
        joint_attention_kwargs=joint_attention_kwargs,
        return_dict=False,
    )[0]
    return split_target(velocity, n_ref)
