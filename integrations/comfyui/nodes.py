"""The MegaStyle nodes: MegaStyle-FLUX style transfer and the MegaStyle style score, over megastyle's library.

Each class is a classic ComfyUI node (``INPUT_TYPES``, ``RETURN_TYPES``, ``RETURN_NAMES``, ``FUNCTION``,
``CATEGORY``). ComfyUI's own types where they fit (``IMAGE``, ``LATENT``, ``FLOAT``, ``STRING``) and three of
this pack's: ``MEGASTYLE_PIPE`` (the pipeline and its LoRA), ``MEGASTYLE_REFERENCE`` (encoded style images)
and ``MEGASTYLE_ENCODER`` (the style encoder).
"""

from __future__ import annotations

import logging
from typing import Any

from .support import (
    ENCODER_FOLDER,
    LORA_SUFFIXES,
    TRANSFORMER_SUFFIXES,
    LoraSetting,
    MegaStylePipe,
    MegaStyleReference,
    check_size,
    cpu_generator,
    encoder_choices,
    is_unset,
    model_files,
    ordinary_tensors,
    path_input,
    pipeline_folders,
    resolve,
    resolve_device,
    step_callback,
    to_image,
    to_pil,
)

logger = logging.getLogger(__name__)

PIPE, REFERENCE, ENCODER = "MEGASTYLE_PIPE", "MEGASTYLE_REFERENCE", "MEGASTYLE_ENCODER"
CATEGORY = "MegaStyle"
DEVICES = ["auto", "cuda", "cpu", "mps"]
RESIZE_MODES = ["crop", "default"]
SCHEDULES = ["official", "diffusers"]


def _size(name: str) -> tuple[str, dict[str, Any]]:
    return (
        "INT",
        {"default": 512, "min": 16, "max": 4096, "step": 16, "tooltip": f"Image {name} (a multiple of 16)."},
    )


def _generation_inputs() -> dict[str, Any]:
    """The settings the sampler and the all-in-one node share (the official defaults)."""
    return {
        "prompt": (
            "STRING",
            {"default": "A house with a tree beside", "multiline": True, "tooltip": "The content prompt."},
        ),
        "width": _size("width"),
        "height": _size("height"),
        "steps": ("INT", {"default": 30, "min": 1, "max": 200, "tooltip": "Denoising steps (official: 30)."}),
        "guidance": (
            "FLOAT",
            {
                "default": 3.5,
                "min": 0.0,
                "max": 100.0,
                "step": 0.1,
                "tooltip": "Embedded guidance (official: 3.5).",
            },
        ),
        "seed": (
            "INT",
            {
                "default": 42,
                "min": 0,
                "max": 0xFFFFFFFFFFFFFFFF,
                "control_after_generate": True,
                "tooltip": "The batch's noise seed (one CPU generator for the whole batch, as ComfyUI's samplers).",
            },
        ),
        "schedule": (
            SCHEDULES,
            {
                "default": "official",
                "tooltip": "official: static shift 3.0, as the released model was run; diffusers: FluxPipeline's "
                "resolution-dependent shift.",
            },
        ),
        "batch_size": (
            "INT",
            {"default": 1, "min": 1, "max": 64, "tooltip": "Images per reference image."},
        ),
    }


_SEQUENCE_LENGTH = (
    "INT",
    {
        "default": 512,
        "min": 16,
        "max": 512,
        "step": 16,
        "tooltip": "T5 prompt length in tokens (official: 512).",
    },
)


class MegaStyleFluxLoader:
    """FLUX.1-dev as a MegaStyle-FLUX pipeline, from a diffusers folder, optionally with its transformer from one
    single-file checkpoint."""

    DESCRIPTION = (
        "Loads FLUX.1-dev from a local diffusers folder (models/diffusers). With a transformer file "
        "(models/diffusion_models or models/unet) the transformer comes from that file and the rest from the folder."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "flux_folder": path_input(
                    pipeline_folders(),
                    "models/FLUX.1-dev",
                    "A FLUX.1-dev folder in diffusers layout (with model_index.json).",
                ),
                "dtype": (
                    ["auto", "bf16", "fp16", "fp32"],
                    {"default": "auto", "tooltip": "auto: bf16 on CUDA, fp32 elsewhere."},
                ),
                "device": (DEVICES, {"default": "auto", "tooltip": "auto: ComfyUI's device."}),
            },
            "optional": {
                "transformer_file": path_input(
                    model_files("diffusion_models", TRANSFORMER_SUFFIXES),
                    "",
                    "Optional single-file FLUX transformer (.safetensors); the folder then needs only its "
                    "transformer/config.json.",
                    optional=True,
                ),
            },
        }

    RETURN_TYPES = (PIPE,)
    RETURN_NAMES = ("pipe",)
    FUNCTION = "load"
    CATEGORY = f"{CATEGORY}/loaders"

    def load(
        self, flux_folder: str, dtype: str = "auto", device: str = "auto", transformer_file: str | None = None
    ) -> tuple[MegaStylePipe]:
        from megastyle.transfer.loading import load_flux_pipeline, resolve_dtype

        target = resolve_device(device)
        folder = resolve(flux_folder, "diffusers")
        single = None if is_unset(transformer_file) else resolve(transformer_file, "diffusion_models")
        with ordinary_tensors():
            pipeline = load_flux_pipeline(
                folder, resolve_dtype(dtype, target), target, transformer_file=single
            )
        source = folder.name if single is None else f"{folder.name} + {single.name}"
        return (MegaStylePipe(pipeline, source),)


class MegaStyleLoraLoader:
    """The MegaStyle LoRA (official kohya file or diffusers format) at a strength; never stacks."""

    DESCRIPTION = (
        "Puts the MegaStyle-FLUX LoRA on the pipe at this strength. The pipe carries exactly one MegaStyle LoRA: "
        "running this node again, chaining it, or changing the strength replaces the earlier one."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "pipe": (PIPE, {}),
                "lora": path_input(
                    model_files("loras", LORA_SUFFIXES),
                    "models/megastyle_flux.safetensors",
                    "megastyle_flux.safetensors (official, kohya) or a diffusers-format LoRA.",
                ),
                "strength": (
                    "FLOAT",
                    {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01, "tooltip": "1.0: as trained."},
                ),
            }
        }

    RETURN_TYPES = (PIPE,)
    RETURN_NAMES = ("pipe",)
    FUNCTION = "apply"
    CATEGORY = f"{CATEGORY}/loaders"

    def apply(self, pipe: MegaStylePipe, lora: str, strength: float = 1.0) -> tuple[MegaStylePipe]:
        path = resolve(lora, "loras")
        with_lora = MegaStylePipe(pipe.pipeline, pipe.source, LoraSetting(path, float(strength)))
        with_lora.ready()  # loads (or re-scales) now, so a bad file fails at this node
        return (with_lora,)


class MegaStyleReferenceEncode:
    """Style images → clean reference latents for one target size."""

    DESCRIPTION = (
        "VAE-encodes the style reference(s) for a width × height target, as MegaStyleFluxPipeline does. "
        "A batch of images gives one reference per image."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "pipe": (PIPE, {}),
                "image": ("IMAGE", {"tooltip": "The style reference(s)."}),
                "width": _size("width"),
                "height": _size("height"),
                "resize_mode": (
                    RESIZE_MODES,
                    {
                        "default": "crop",
                        "tooltip": "crop: centre-crop to the target's aspect, then resize; default: stretch to "
                        "the target size, as the official code does.",
                    },
                ),
            }
        }

    RETURN_TYPES = (REFERENCE,)
    RETURN_NAMES = ("reference",)
    FUNCTION = "encode"
    CATEGORY = f"{CATEGORY}/sampling"

    def encode(
        self, pipe: MegaStylePipe, image: Any, width: int, height: int, resize_mode: str = "crop"
    ) -> tuple[MegaStyleReference]:
        pipeline = pipe.pipeline
        check_size(pipeline, height, width)
        images = tuple(to_pil(image))
        # In the VAE's dtype: the sampler casts it exactly as the pipeline casts its own encoding.
        tokens = pipeline.encode_reference(
            list(images), height, width, dtype=pipeline.vae.dtype, resize_mode=resize_mode
        )
        return (MegaStyleReference(images, tokens.cpu(), int(height), int(width), resize_mode),)


class MegaStyleSampler:
    """Denoise: prompt + reference → latents, with per-step progress."""

    DESCRIPTION = (
        "Generates batch_size images per reference in the reference's style. The output LATENT is the FLUX "
        "VAE latent, as ComfyUI's own samplers return it."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {"pipe": (PIPE, {}), "reference": (REFERENCE, {}), **_generation_inputs()},
            "optional": {"max_sequence_length": _SEQUENCE_LENGTH},
        }

    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    FUNCTION = "sample"
    CATEGORY = f"{CATEGORY}/sampling"

    def sample(
        self,
        pipe: MegaStylePipe,
        reference: MegaStyleReference,
        prompt: str,
        width: int,
        height: int,
        steps: int,
        guidance: float,
        seed: int,
        schedule: str,
        batch_size: int,
        max_sequence_length: int = 512,
    ) -> tuple[dict[str, Any]]:
        from megastyle.transfer.latents import unpack_latents

        pipeline = pipe.ready()
        check_size(pipeline, height, width)
        if (reference.height, reference.width) != (height, width):
            logger.info(
                "MegaStyle: the reference was encoded for %dx%d; encoding it again for %dx%d",
                reference.width,
                reference.height,
                width,
                height,
            )
        # The reference's tokens are reused when they were encoded for this size; otherwise it is encoded again.
        same_size = (reference.height, reference.width) == (height, width)
        tokens = pipeline(
            prompt=prompt,
            style_image=None if same_size else list(reference.images),
            reference_latents=reference.tokens if same_size else None,
            height=height,
            width=width,
            num_inference_steps=steps,
            schedule=schedule,
            guidance_scale=guidance,
            num_images_per_prompt=batch_size,
            generator=cpu_generator(seed),
            reference_resize_mode=reference.resize_mode,
            output_type="latent",
            callback_on_step_end=step_callback(steps),
            max_sequence_length=max_sequence_length,
        ).images
        latents = unpack_latents(tokens, height, width, pipeline.vae_scale_factor)
        config = pipeline.vae.config
        return ({"samples": (latents / config.scaling_factor + config.shift_factor).float().cpu()},)


class MegaStyleDecode:
    """FLUX VAE latents → IMAGE."""

    DESCRIPTION = "Decodes the sampler's LATENT with the pipe's VAE."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"pipe": (PIPE, {}), "latent": ("LATENT", {})}}

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    FUNCTION = "decode"
    CATEGORY = f"{CATEGORY}/sampling"

    def decode(self, pipe: MegaStylePipe, latent: dict[str, Any]) -> tuple[Any]:
        import torch
        from diffusers.utils.torch_utils import get_module_execution_device

        pipeline = pipe.pipeline
        vae = pipeline.vae
        samples = latent["samples"].to(device=get_module_execution_device(vae), dtype=vae.dtype)
        with torch.no_grad():
            decoded = vae.decode(samples, return_dict=False)[0]
        return (to_image(pipeline.image_processor.postprocess(decoded, output_type="pt")),)


class MegaStyleTransfer:
    """Everything in one node: pipe + style image + prompt → images."""

    DESCRIPTION = (
        "Style transfer in one node: the reference is encoded, the prompt denoised and the result decoded, as "
        "MegaStyleFluxPipeline does. Gives batch_size images per reference image."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "pipe": (PIPE, {}),
                "image": ("IMAGE", {"tooltip": "The style reference(s)."}),
                **_generation_inputs(),
                "resize_mode": MegaStyleReferenceEncode.INPUT_TYPES()["required"]["resize_mode"],
            },
            "optional": {"max_sequence_length": _SEQUENCE_LENGTH},
        }

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    FUNCTION = "transfer"
    CATEGORY = CATEGORY

    def transfer(
        self,
        pipe: MegaStylePipe,
        image: Any,
        prompt: str,
        width: int,
        height: int,
        steps: int,
        guidance: float,
        seed: int,
        schedule: str,
        batch_size: int,
        resize_mode: str = "crop",
        max_sequence_length: int = 512,
    ) -> tuple[Any]:
        pipeline = pipe.ready()
        check_size(pipeline, height, width)
        pixels = pipeline(
            prompt=prompt,
            style_image=to_pil(image),
            height=height,
            width=width,
            num_inference_steps=steps,
            schedule=schedule,
            guidance_scale=guidance,
            num_images_per_prompt=batch_size,
            generator=cpu_generator(seed),
            reference_resize_mode=resize_mode,
            output_type="pt",
            callback_on_step_end=step_callback(steps),
            max_sequence_length=max_sequence_length,
        ).images
        return (to_image(pixels),)


class MegaStyleEncoderLoader:
    """The MegaStyle style encoder: the official .pth on a base SigLIP folder, or a megastyle encoder folder."""

    DESCRIPTION = (
        "Loads the style encoder from models/megastyle: the official megastyle_encoder.pth with its base SigLIP "
        "folder (siglip-so400m-patch14-384), or an encoder folder saved by megastyle (no base needed)."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        encoders, bases = encoder_choices()
        return {
            "required": {
                "encoder": path_input(
                    encoders,
                    "models/megastyle_encoder.pth",
                    "The official .pth (needs base_model) or an encoder folder.",
                ),
                "device": (DEVICES, {"default": "auto", "tooltip": "auto: ComfyUI's device."}),
                "dtype": (
                    ["float32", "bfloat16", "float16"],
                    {"default": "float32", "tooltip": "float32 gives the score megastyle score gives."},
                ),
            },
            "optional": {
                "base_model": path_input(
                    bases,
                    "",
                    "The SigLIP folder the official .pth was trained from; unused for an encoder folder.",
                    optional=True,
                ),
            },
        }

    RETURN_TYPES = (ENCODER,)
    RETURN_NAMES = ("encoder",)
    FUNCTION = "load"
    CATEGORY = f"{CATEGORY}/loaders"

    def load(
        self, encoder: str, device: str = "auto", dtype: str = "float32", base_model: str | None = None
    ) -> tuple[Any]:
        from megastyle.encode.source import EncoderSource, load_encoder_from_config

        path = resolve(encoder, ENCODER_FOLDER)
        target = resolve_device(device)
        if not path.exists():
            raise FileNotFoundError(
                f"{encoder}: no such style encoder (an official .pth or an encoder folder)"
            )
        if path.is_file():
            if is_unset(base_model):
                raise ValueError(
                    f"{encoder} is the official state dict: set base_model to its SigLIP folder "
                    "(siglip-so400m-patch14-384)"
                )
            source = EncoderSource(
                official_pth=path,
                base_model=resolve(base_model or "", ENCODER_FOLDER),
                device=target,
                dtype=dtype,
            )
        else:
            source = EncoderSource(encoder=path, device=target, dtype=dtype)
        with ordinary_tensors():
            return (load_encoder_from_config(source),)


class MegaStyleStyleScore:
    """The official style score of images against a reference, one score per image."""

    DESCRIPTION = (
        "Cosine of the style encoder's embeddings, as the official style_score.py and megastyle score compute it. "
        "One reference and a batch of images: one score per image; equal batches: pairwise."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "encoder": (ENCODER, {}),
                "reference": (
                    "IMAGE",
                    {"tooltip": "The style reference (the official script's first image)."},
                ),
                "images": ("IMAGE", {"tooltip": "The images to score (e.g. the generated ones)."}),
            }
        }

    RETURN_TYPES = ("FLOAT", "STRING")
    RETURN_NAMES = ("score", "text")
    OUTPUT_IS_LIST = (True, False)
    OUTPUT_NODE = True
    FUNCTION = "score"
    CATEGORY = CATEGORY

    def score(self, encoder: Any, reference: Any, images: Any) -> dict[str, Any]:
        from megastyle.encode.model import cosine_score

        references, candidates = to_pil(reference), to_pil(images)
        if len(references) == 1:
            pairs = [(references[0], image) for image in candidates]
        elif len(candidates) == 1:
            pairs = [(image, candidates[0]) for image in references]
        elif len(references) == len(candidates):
            pairs = list(zip(references, candidates, strict=True))
        else:
            raise ValueError(
                f"{len(references)} references for {len(candidates)} images: give one reference, one image, "
                "or as many of each"
            )
        # One pair at a time, as megastyle score embeds them, so each score is the command's to the last bit.
        scores = [cosine_score(encoder, a, b) for a, b in pairs]
        text = "\n".join(f"=> style score: {value:.2f}" for value in scores)  # the official line
        return {"ui": {"text": [text]}, "result": (scores, text)}


NODE_CLASS_MAPPINGS: dict[str, type] = {
    "MegaStyleFluxLoader": MegaStyleFluxLoader,
    "MegaStyleLoraLoader": MegaStyleLoraLoader,
    "MegaStyleReferenceEncode": MegaStyleReferenceEncode,
    "MegaStyleSampler": MegaStyleSampler,
    "MegaStyleDecode": MegaStyleDecode,
    "MegaStyleTransfer": MegaStyleTransfer,
    "MegaStyleEncoderLoader": MegaStyleEncoderLoader,
    "MegaStyleStyleScore": MegaStyleStyleScore,
}

NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {
    "MegaStyleFluxLoader": "MegaStyle-FLUX Loader",
    "MegaStyleLoraLoader": "MegaStyle LoRA",
    "MegaStyleReferenceEncode": "MegaStyle Reference Encode",
    "MegaStyleSampler": "MegaStyle Sampler",
    "MegaStyleDecode": "MegaStyle Decode",
    "MegaStyleTransfer": "MegaStyle Transfer (all in one)",
    "MegaStyleEncoderLoader": "MegaStyle Style Encoder Loader",
    "MegaStyleStyleScore": "MegaStyle Style Score",
}
