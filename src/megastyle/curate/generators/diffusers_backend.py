"""The ``diffusers`` text-to-image backend: any local diffusers pipeline (Qwen-Image, FLUX, SDXL, ...).

One prompt per request is built from ``prompt_template`` (default ``"{content}. {style}"``: the scene
first, then the style sentence, as the paper's renderer was prompted with a content and a style part).
Each request gets its own ``torch.Generator`` seeded with ``request.seed``, passed as a generator list,
so a batch renders the same images as the same requests one by one. Which keyword arguments are passed
(``guidance_scale``, ``true_cfg_scale``, ``negative_prompt``, ``output_type``, ...) is decided from the
pipeline's ``__call__`` signature, not from its class name. Only local directories are loaded: the hub is
never contacted.
"""

from __future__ import annotations

import inspect
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from megastyle.curate.generators.base import GenerationRequest

DEFAULT_PROMPT_TEMPLATE = "{content}. {style}"

# The paper's rendering recipe for Qwen-Image: 40 steps, classifier-free guidance 4.0. Qwen-Image
# applies true CFG only when a negative prompt is given, hence the single-space negative prompt.
QWEN_IMAGE_PAPER_OPTIONS: dict[str, Any] = {
    "num_inference_steps": 40,
    "true_cfg_scale": 4.0,
    "negative_prompt": " ",
}

_DTYPES = ("float32", "float16", "bfloat16")
# Arguments the backend sets itself; passing them through extra_kwargs would silently fight it.
_RESERVED = frozenset({"prompt", "height", "width", "generator", "num_images_per_prompt", "output_type"})


def compose_prompt(template: str, style: str, content: str) -> str:
    """Fill ``template``'s ``{style}`` and ``{content}``; the content's trailing period is dropped first."""
    # Content prompts often end in "." and the default template adds one: avoid "a cat.. In the style".
    return template.format(style=style.strip(), content=content.strip().rstrip(".").rstrip())


def check_prompt_template(template: str) -> str:
    """Return ``template`` if it names ``{style}`` and ``{content}`` and no other field, else raise."""
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"prompt_template {template!r} is not a valid format string: {exc}") from exc
    missing = {"style", "content"} - fields
    unknown = fields - {"style", "content"}
    if missing or unknown:
        raise ValueError(
            f"prompt_template {template!r} must use exactly the fields {{style}} and {{content}}"
            f" (missing: {sorted(missing)}, unknown: {sorted(unknown)})"
        )
    return template


def round_to_multiple(size: int, multiple: int, *, pipeline: str = "pipeline") -> int:
    """Nearest multiple of ``multiple`` to ``size`` (ties round up); raises if ``size`` < ``multiple``."""
    if multiple < 1:
        raise ValueError(f"{pipeline}: size multiple must be >= 1, got {multiple}")
    if size < multiple:
        raise ValueError(
            f"{pipeline}: image size {size} is smaller than the pipeline's size multiple {multiple};"
            f" request at least {multiple} pixels"
        )
    return max(multiple, (size + multiple // 2) // multiple * multiple)


def _resolve_dtype(dtype: str | Any | None, device: str) -> Any:
    import torch

    if dtype is None:
        # bf16 is what these models ship in; CPUs run fp32 (bf16 matmuls on CPU are slow or absent).
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).removeprefix("torch.")
    if name not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    return getattr(torch, name)


def _dtype_keyword() -> str:
    """``dtype`` where diffusers accepts it (``torch_dtype`` is deprecated there), else ``torch_dtype``."""
    from diffusers.pipelines import pipeline_utils

    return "dtype" if hasattr(pipeline_utils, "_resolve_dtype") else "torch_dtype"


def _resolve_pipeline_class(pipeline_class: str | type | None) -> Any:
    import diffusers

    if pipeline_class is None:
        return diffusers.DiffusionPipeline  # reads the concrete class from model_index.json
    if isinstance(pipeline_class, str):
        found = getattr(diffusers, pipeline_class, None)
        if found is None or not hasattr(found, "from_pretrained"):
            raise ValueError(f"diffusers has no pipeline class {pipeline_class!r}")
        return found
    return pipeline_class


class DiffusersBackend:
    """Text-to-image backend over a local diffusers pipeline directory; ``name`` is ``"diffusers"``."""

    name = "diffusers"

    def __init__(
        self,
        model_path: str | Path,
        pipeline_class: str | type | None = None,
        dtype: str | Any | None = None,
        device: str | None = None,
        num_inference_steps: int = 40,
        guidance_scale: float | None = None,
        true_cfg_scale: float | None = None,
        batch_size: int = 4,
        prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
        negative_prompt: str | None = None,
        extra_kwargs: dict[str, Any] | None = None,
        size_multiple: int | None = None,
        generator_device: str = "cpu",
    ) -> None:
        import torch

        path = Path(model_path).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(
                f"diffusers backend: no local pipeline directory at {path} (the hub is never used;"
                " download the model first and pass its folder)"
            )
        if not (path / "model_index.json").is_file():
            raise FileNotFoundError(
                f"diffusers backend: {path} has no model_index.json; expected a diffusers pipeline folder"
                " as written by save_pretrained"
            )
        if batch_size < 1 or num_inference_steps < 1:
            raise ValueError(
                f"batch_size and num_inference_steps must be >= 1, got {batch_size}, {num_inference_steps}"
            )
        self.model_path = path.resolve()
        self.prompt_template = check_prompt_template(prompt_template)
        self.batch_size = batch_size
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = _resolve_dtype(dtype, self.device)
        # CPU generators make the initial noise independent of the accelerator (diffusers' advice).
        self.generator_device = generator_device
        cls = _resolve_pipeline_class(pipeline_class)
        dtype_kwarg = {_dtype_keyword(): self.dtype}
        self.pipeline = cls.from_pretrained(self.model_path, local_files_only=True, **dtype_kwarg)
        self.pipeline.to(self.device)
        self.pipeline.set_progress_bar_config(disable=True)
        self.call_parameters = self._call_parameters()
        self.size_multiple = size_multiple or self._detect_size_multiple()
        self.call_kwargs = self._fixed_kwargs(
            num_inference_steps, guidance_scale, true_cfg_scale, negative_prompt, extra_kwargs or {}
        )

    # -- introspection ----------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        """The model's name for the dataset card: its folder name, or ``org/name`` for a hub-cache snapshot."""
        parent = self.model_path.parent
        if parent.name == "snapshots" and parent.parent.name.startswith("models--"):
            return parent.parent.name.removeprefix("models--").replace("--", "/")  # models--Qwen--Qwen-Image
        return self.model_path.name

    @property
    def pipeline_class_name(self) -> str:
        """Concrete pipeline class, e.g. ``QwenImagePipeline``."""
        return type(self.pipeline).__name__

    def describe(self) -> dict[str, Any]:
        """Everything that decides the output, JSON-friendly, for manifests and dataset cards."""
        fixed = {k: v for k, v in self.call_kwargs.items() if isinstance(v, str | int | float | bool)}
        return {
            "backend": self.name,
            "model_id": self.model_id,
            "pipeline_class": self.pipeline_class_name,
            "dtype": str(self.dtype).removeprefix("torch."),
            "prompt_template": self.prompt_template,
            "size_multiple": self.size_multiple,
            **fixed,
        }

    def accepts(self, name: str) -> bool:
        """True if the pipeline's ``__call__`` has an explicit parameter ``name``."""
        return name in self.call_parameters

    def _call_parameters(self) -> frozenset[str]:
        # Only named parameters count: SDXL's **kwargs swallows unknown names silently.
        params = inspect.signature(self.pipeline.__call__).parameters.values()
        return frozenset(p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))

    def _detect_size_multiple(self) -> int:
        # FLUX / Qwen-Image pack 2x2 latent patches, and their image processors carry the product.
        processor = getattr(self.pipeline, "image_processor", None)
        factor = getattr(getattr(processor, "config", None), "vae_scale_factor", None)
        if factor is None:
            factor = getattr(self.pipeline, "vae_scale_factor", 8)
        return int(factor)

    def _fixed_kwargs(
        self,
        steps: int,
        guidance_scale: float | None,
        true_cfg_scale: float | None,
        negative_prompt: str | None,
        extra: dict[str, Any],
    ) -> dict[str, Any]:
        wanted: dict[str, Any] = {"num_inference_steps": steps}
        cfg_on = true_cfg_scale is not None and true_cfg_scale > 1
        if cfg_on and negative_prompt is None and self.accepts("negative_prompt"):
            # Qwen-Image and FLUX enable true CFG only with a negative prompt; without one they would
            # silently ignore true_cfg_scale. A single space is the paper recipe's (and Qwen's) choice.
            negative_prompt = " "
        for key, value in (
            ("guidance_scale", guidance_scale),
            ("true_cfg_scale", true_cfg_scale),
            ("negative_prompt", negative_prompt),
        ):
            if value is not None:
                wanted[key] = value
        clash = _RESERVED & set(extra)
        if clash:
            raise ValueError(f"extra_kwargs may not set {sorted(clash)}: the backend sets them per request")
        wanted.update(extra)
        refused = sorted(k for k in wanted if not self.accepts(k))
        if refused:
            raise ValueError(
                f"{self.pipeline_class_name}.__call__ does not accept {refused};"
                f" it takes: {', '.join(sorted(self.call_parameters - {'self'}))}"
            )
        if "output_type" in self.call_parameters:
            wanted["output_type"] = "np"  # lets us catch NaN/inf outputs instead of saving black images
        return wanted

    # -- generation -------------------------------------------------------------------------
    def prompt_for(self, request: GenerationRequest) -> str:
        """The single text-to-image prompt for ``request`` (see ``prompt_template``)."""
        return compose_prompt(self.prompt_template, request.style, request.content)

    def generate(self, requests: list[GenerationRequest]) -> list[Image.Image]:
        """Render one RGB image per request, in order; batches group requests of equal size."""
        images: list[Image.Image | None] = [None] * len(requests)
        by_size: dict[int, list[int]] = {}
        for i, request in enumerate(requests):
            by_size.setdefault(request.size, []).append(i)
        for size, indices in by_size.items():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                rendered = self._render([requests[i] for i in chunk], size)
                for i, image in zip(chunk, rendered, strict=True):
                    images[i] = image
        assert all(image is not None for image in images), "every request is rendered exactly once"
        return images  # type: ignore[return-value]

    def _render(self, batch: Sequence[GenerationRequest], size: int) -> list[Image.Image]:
        import torch

        side = round_to_multiple(size, self.size_multiple, pipeline=self.pipeline_class_name)
        generators = [torch.Generator(self.generator_device).manual_seed(int(r.seed)) for r in batch]
        kwargs = dict(self.call_kwargs)
        if isinstance(kwargs.get("negative_prompt"), str):
            kwargs["negative_prompt"] = [kwargs["negative_prompt"]] * len(batch)
        with torch.inference_mode():
            output = self.pipeline(
                prompt=[self.prompt_for(r) for r in batch],
                height=side,
                width=side,
                generator=generators,
                **kwargs,
            )
        images = [_to_pil(image, request) for image, request in zip(output.images, batch, strict=True)]
        if side != size:  # rendered at the nearest legal size; hand back exactly what was asked for
            images = [image.resize((size, size), Image.Resampling.LANCZOS) for image in images]
        return images


def _to_pil(image: Any, request: GenerationRequest) -> Image.Image:
    """Pipeline output (float array in [0, 1] or PIL) → RGB PIL; non-finite pixels raise."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    array = np.asarray(image, dtype=np.float32)
    if not np.isfinite(array).all():
        raise ValueError(
            f"pipeline produced non-finite pixels for seed {request.seed} (content {request.content[:40]!r});"
            " try dtype='float32' or 'bfloat16' (fp16 VAEs overflow)"
        )
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    array = np.clip(np.rint(array[..., :3] * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(array, "RGB")


__all__ = [
    "DEFAULT_PROMPT_TEMPLATE",
    "QWEN_IMAGE_PAPER_OPTIONS",
    "DiffusersBackend",
    "check_prompt_template",
    "compose_prompt",
    "round_to_multiple",
]
