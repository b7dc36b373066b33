"""``MegaStyleFluxPipeline``: MegaStyle-FLUX style transfer as a diffusers pipeline over FLUX components.

What the official code does (Tencent/MegaStyle ``flux_image_mega.py`` + ``inference.py`` on DiffSynth-Studio):
the style image is resized to the target size (``PIL.Image.resize``, a stretch) and VAE-encoded (the latent
mean, no sampling); the reference and the noise are stacked on the batch axis, ``[ref, noise]``, and inside
the DiT the two are patchified and concatenated on the token axis as ``[reference, target]``; the RoPE ids
are ``[text, reference, target]`` where the reference ids are the target's with the column coordinate
shifted by the token-grid width (``latent_width // 2``) and first coordinate 0; both parts get the same
timestep; after each Euler step the reference half is reset to the clean latents; only the target is decoded.
It runs one image at a time (batch 1) with 30 steps, static shift 3.0, embedded guidance 3.5, T5 length 512.

What this pipeline does: the same token order, ids, shared timestep and clean reference at every step (the
reference tokens are never stepped: the scheduler only sees the target, which equals stepping and resetting),
but batched — several prompts per reference, one reference per prompt, ``num_images_per_prompt`` and per-item
generators — and with diffusers' conventions (``from_pretrained`` on a FLUX directory, ``.to()``,
``output_type``, progress bar, ``callback_on_step_end``). Where diffusers differs from the official code:
the default schedule is FluxPipeline's dynamic shift with 28 steps (``schedule="official"`` reproduces the
official one, see ``megastyle.transfer.schedule``); references are centre-cropped to the target aspect before
resizing by default (``reference_resize_mode="default"`` stretches like the official ``inference.py``, with
diffusers' Lanczos instead of PIL's bicubic); the noise comes from diffusers' ``randn_tensor``, so the same
seed gives a different image than DiffSynth. Without a reference every step is exactly FluxPipeline's, so the
output is identical to ``FluxPipeline`` for the same inputs and generator. True CFG and IP-Adapter inputs of
FluxPipeline are not supported (the official method uses neither).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers import FluxPipeline
from diffusers.pipelines.flux.pipeline_flux_kontext import retrieve_latents
from diffusers.pipelines.flux.pipeline_output import FluxPipelineOutput
from diffusers.utils.torch_utils import get_module_execution_device

from megastyle.transfer.latents import pack_latents, predict_target_velocity
from megastyle.transfer.schedule import (
    DIFFUSERS_NUM_STEPS,
    OFFICIAL_NUM_STEPS,
    SCHEDULES,
    ScheduleName,
    prepare_schedule,
)

__all__ = ["MegaStyleFluxPipeline", "StyleImage", "reference_assignment"]

StyleImage = PIL.Image.Image | np.ndarray | torch.Tensor
RESIZE_MODES = ("crop", "default", "fill")


def _as_image_list(style_image: StyleImage | Sequence[StyleImage]) -> list[StyleImage]:
    """One image, a list of images, or a 4-D batch → a list of single images."""
    if isinstance(style_image, (torch.Tensor, np.ndarray)) and style_image.ndim == 4:
        return list(style_image)
    if isinstance(style_image, (PIL.Image.Image, torch.Tensor, np.ndarray)):
        return [style_image]
    images = list(style_image)
    if not images:
        raise ValueError("style_image is an empty list; pass None for no reference")
    for index, image in enumerate(images):
        if not isinstance(image, (PIL.Image.Image, torch.Tensor, np.ndarray)):
            raise TypeError(
                f"style_image[{index}] is a {type(image).__name__}, not a PIL image, array or tensor"
            )
    return images


def reference_assignment(num_references: int, num_prompts: int) -> list[int]:
    """Which reference each prompt uses: one for all prompts, or one per prompt (in order)."""
    if num_references == 1:
        return [0] * num_prompts
    if num_references == num_prompts:
        return list(range(num_prompts))
    raise ValueError(
        f"got {num_references} style images for {num_prompts} prompts: pass one style image for all prompts, "
        "one per prompt, or a single prompt for all style images"
    )


class MegaStyleFluxPipeline(FluxPipeline):
    """FLUX.1 text-to-image with MegaStyle's in-context style reference (module docstring: official vs here)."""

    def _preprocess_reference(
        self, images: list[StyleImage], height: int, width: int, resize_mode: str
    ) -> torch.Tensor:
        """Resize (centre-crop by default) each reference to ``height × width`` → (N, 3, H, W) in [-1, 1]."""
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f"unknown reference_resize_mode {resize_mode!r}; expected one of {RESIZE_MODES}")
        processed = []
        for index, image in enumerate(images):
            try:
                if resize_mode != "default" and not isinstance(image, PIL.Image.Image):
                    # diffusers crops/fills PIL images only; arrays/tensors are taken as [0, 1] RGB.
                    array = (
                        image
                        if isinstance(image, np.ndarray)
                        else self.image_processor.pt_to_numpy(image[None])
                    )
                    image = self.image_processor.numpy_to_pil(array)[0]
                processed.append(
                    self.image_processor.preprocess(
                        image, height=height, width=width, resize_mode=resize_mode
                    )
                )
            except (ValueError, TypeError, RuntimeError) as error:
                raise ValueError(f"style_image[{index}] could not be preprocessed: {error}") from error
        return torch.cat(processed, dim=0)

    @torch.no_grad()
    def encode_reference(
        self,
        images: StyleImage | Sequence[StyleImage],
        height: int,
        width: int,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        resize_mode: str = "crop",
    ) -> torch.Tensor:
        """Style images → packed clean reference latents (N, tokens, 4·C) for a ``height × width`` target."""
        device = device if device is not None else self._execution_device
        # Encode at the size the target latents actually have (FluxPipeline rounds down to a multiple of 2·vsf).
        scale = self.vae_scale_factor
        height, width = 2 * (int(height) // (scale * 2)) * scale, 2 * (int(width) // (scale * 2)) * scale
        pixels = self._preprocess_reference(_as_image_list(images), height, width, resize_mode)
        pixels = pixels.to(device=device, dtype=self.vae.dtype)
        # The latent mean, as the official (DiffSynth) VAE encoder and diffusers' Kontext use.
        latents = retrieve_latents(self.vae.encode(pixels), sample_mode="argmax")
        latents = (latents - self.vae.config.shift_factor) * self.vae.config.scaling_factor
        return pack_latents(latents).to(dtype=dtype or self.transformer.dtype)

    def transformer_step(
        self,
        latents: torch.Tensor,
        reference: torch.Tensor | None,
        timestep: torch.Tensor,
        prompt_embeds: torch.Tensor,
        pooled_prompt_embeds: torch.Tensor,
        text_ids: torch.Tensor,
        guidance: torch.Tensor | None,
        *,
        height: int,
        width: int,
        joint_attention_kwargs: dict[str, Any] | None = None,
    ) -> torch.Tensor:
        """Velocity for the target tokens at scheduler ``timestep`` (0–1000) of a ``height × width`` image."""
        latent_height = 2 * (int(height) // (self.vae_scale_factor * 2))
        latent_width = 2 * (int(width) // (self.vae_scale_factor * 2))
        return predict_target_velocity(
            self.transformer,
            latents,
            None if reference is None else reference.to(latents.dtype),
            timestep / 1000,  # the transformer takes σ; it multiplies by 1000 itself
            prompt_embeds,
            pooled_prompt_embeds,
            text_ids,
            guidance,
            latent_height,
            latent_width,
            joint_attention_kwargs,
        )

    def _reference_batch(
        self,
        style_image: StyleImage | Sequence[StyleImage] | None,
        batch_size: int,
        num_images_per_prompt: int,
        height: int,
        width: int,
        dtype: torch.dtype,
        device: torch.device,
        resize_mode: str,
        reference_latents: torch.Tensor | None = None,
    ) -> torch.Tensor | None:
        """Encode each distinct reference once (or take ``reference_latents``, already encoded by
        ``encode_reference``) and lay it out like the prompt embeddings (prompt-major)."""
        if reference_latents is not None:
            encoded = reference_latents.to(device=device, dtype=dtype)
        elif style_image is None:
            return None
        else:
            encoded = self.encode_reference(
                _as_image_list(style_image),
                height,
                width,
                dtype=dtype,
                device=device,
                resize_mode=resize_mode,
            )
        assignment = reference_assignment(len(encoded), batch_size)
        index = torch.tensor(assignment, device=device).repeat_interleave(num_images_per_prompt)
        return encoded[index]

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        style_image: StyleImage | Sequence[StyleImage] | None = None,
        prompt_2: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        schedule: ScheduleName = "diffusers",
        sigmas: list[float] | None = None,
        guidance_scale: float = 3.5,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        pooled_prompt_embeds: torch.Tensor | None = None,
        reference_resize_mode: str = "crop",
        reference_latents: torch.Tensor | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        joint_attention_kwargs: dict[str, Any] | None = None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
        max_sequence_length: int = 512,
    ) -> FluxPipelineOutput | tuple[Any]:
        """Generate ``prompt`` images in the style of ``style_image`` (None: plain FLUX, equal to FluxPipeline).

        ``style_image``: one image for all prompts, one per prompt, or several with a single prompt (the prompt
        is then repeated for each). ``schedule``: "diffusers" (FluxPipeline's dynamic shift, 28 steps default)
        or "official" (static shift 3.0, DiffSynth's sigma spacing, 30 steps default). ``output_type="latent"``
        returns the packed target tokens, like FluxPipeline. ``reference_latents``: the references already
        encoded by ``encode_reference`` at this height and width (then ``style_image`` is not encoded).
        """
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r}; expected one of {SCHEDULES}")
        if num_inference_steps is None:
            num_inference_steps = OFFICIAL_NUM_STEPS if schedule == "official" else DIFFUSERS_NUM_STEPS
        tensor_inputs = callback_on_step_end_tensor_inputs or ["latents"]
        height = height or self.default_sample_size * self.vae_scale_factor
        width = width or self.default_sample_size * self.vae_scale_factor

        # A single prompt with several references: one image per reference.
        if (style_image is not None or reference_latents is not None) and prompt is not None:
            num_references = (
                len(reference_latents) if reference_latents is not None else len(_as_image_list(style_image))
            )
            prompts = [prompt] if isinstance(prompt, str) else list(prompt)
            if num_references > 1 and len(prompts) == 1:
                prompt = prompts * num_references
                if isinstance(prompt_2, str):
                    prompt_2 = [prompt_2] * num_references

        self.check_inputs(
            prompt,
            prompt_2,
            height,
            width,
            prompt_embeds=prompt_embeds,
            pooled_prompt_embeds=pooled_prompt_embeds,
            callback_on_step_end_tensor_inputs=tensor_inputs,
            max_sequence_length=max_sequence_length,
        )
        self._guidance_scale = guidance_scale
        self._joint_attention_kwargs = joint_attention_kwargs or {}
        self._current_timestep = None
        self._interrupt = False

        if isinstance(prompt, str):
            batch_size = 1
        elif prompt is not None:
            batch_size = len(prompt)
        else:
            batch_size = prompt_embeds.shape[0]
        device = self._execution_device

        prompt_embeds, pooled_prompt_embeds, text_ids = self.encode_prompt(
            prompt=prompt,
            prompt_2=prompt_2,
            prompt_embeds=prompt_embeds,
            pooled_prompt_embeds=pooled_prompt_embeds,
            device=device,
            num_images_per_prompt=num_images_per_prompt,
            max_sequence_length=max_sequence_length,
            lora_scale=self._joint_attention_kwargs.get("scale"),
        )
        latents, _ = self.prepare_latents(
            batch_size * num_images_per_prompt,
            self.transformer.config.in_channels // 4,
            height,
            width,
            prompt_embeds.dtype,
            device,
            generator,
            latents,
        )
        # Encoded after the noise is drawn and without a generator, so references never shift the noise.
        reference = self._reference_batch(
            style_image,
            batch_size,
            num_images_per_prompt,
            height,
            width,
            latents.dtype,
            device,
            reference_resize_mode,
            reference_latents,
        )

        # The shift depends on the target's token count only (the image being generated), not the reference.
        scheduler, timesteps = prepare_schedule(
            self.scheduler, schedule, num_inference_steps, latents.shape[1], device, sigmas
        )
        num_inference_steps = len(timesteps)
        num_warmup_steps = max(len(timesteps) - num_inference_steps * scheduler.order, 0)
        self._num_timesteps = len(timesteps)

        guidance = None
        if self.transformer.config.guidance_embeds:
            guidance = torch.full([1], guidance_scale, device=device, dtype=torch.float32).expand(
                latents.shape[0]
            )

        scheduler.set_begin_index(0)
        with self.progress_bar(total=num_inference_steps) as progress_bar:
            for i, t in enumerate(timesteps):
                if self.interrupt:
                    continue
                self._current_timestep = t
                timestep = t.expand(latents.shape[0]).to(latents.dtype)
                with self.transformer.cache_context("cond"):
                    velocity = self.transformer_step(
                        latents,
                        reference,
                        timestep,
                        prompt_embeds,
                        pooled_prompt_embeds,
                        text_ids,
                        guidance,
                        height=height,
                        width=width,
                        joint_attention_kwargs=self._joint_attention_kwargs,
                    )
                # Only the target is stepped; the reference stays clean (the official resets it each step).
                latents = scheduler.step(velocity, t, latents, return_dict=False)[0]

                if callback_on_step_end is not None:
                    step_tensors = {"latents": latents, "prompt_embeds": prompt_embeds}
                    outputs = callback_on_step_end(self, i, t, {k: step_tensors[k] for k in tensor_inputs})
                    latents = outputs.pop("latents", latents)
                    prompt_embeds = outputs.pop("prompt_embeds", prompt_embeds)

                if i == len(timesteps) - 1 or ((i + 1) > num_warmup_steps and (i + 1) % scheduler.order == 0):
                    progress_bar.update()

        self._current_timestep = None
        if output_type == "latent":
            image: Any = latents
        else:
            unpacked = self._unpack_latents(latents, height, width, self.vae_scale_factor)
            unpacked = (unpacked / self.vae.config.scaling_factor) + self.vae.config.shift_factor
            decoded = self.vae.decode(unpacked.to(get_module_execution_device(self.vae)), return_dict=False)[
                0
            ]
            image = self.image_processor.postprocess(decoded, output_type=output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (image,)
        return FluxPipelineOutput(images=image)
