"""What the nodes share: ComfyUI's hooks where ComfyUI is present, the values that travel between nodes, and
conversions between ComfyUI's tensors and the images megastyle takes.

Nothing here runs at import: ComfyUI's modules (``folder_paths``, ``comfy.utils``, ``comfy.model_management``)
and megastyle's are imported when a node runs, so the pack also imports (and its nodes run) outside ComfyUI,
with plain paths.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

# The folder of ComfyUI's model tree this pack reads its style encoders from (``models/megastyle``), and
# the file types each kind of model is read from (safetensors only where megastyle reads nothing else).
ENCODER_FOLDER = "megastyle"
LORA_SUFFIXES = (".safetensors",)
TRANSFORMER_SUFFIXES = (".safetensors", ".sft")
ENCODER_WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
NONE = "none"


# ----- ComfyUI, when present ---------------------------------------------------------------------
def folder_paths() -> ModuleType | None:
    """ComfyUI's ``folder_paths`` module, or None outside ComfyUI."""
    try:
        import folder_paths as module
    except ImportError:
        return None
    return module


def search_paths(kind: str) -> list[Path]:
    """The folders ComfyUI searches for models of ``kind`` (``models/megastyle`` for the encoder)."""
    module = folder_paths()
    if module is None:
        return []
    registered = getattr(module, "folder_names_and_paths", {})
    found = [Path(p) for p in module.get_folder_paths(kind)] if kind in registered else []
    if kind == ENCODER_FOLDER:  # not one of ComfyUI's own kinds: its default place, plus any registered one
        default = Path(module.models_dir) / ENCODER_FOLDER
        found += [default] if default not in found else []
    return found


def model_files(kind: str, suffixes: Sequence[str]) -> list[str]:
    """Names of the ``kind`` files ComfyUI lists that megastyle can read (relative to their folder)."""
    module = folder_paths()
    if module is None:
        return []
    return sorted(n for n in module.get_filename_list(kind) if n.lower().endswith(tuple(suffixes)))


def pipeline_folders() -> list[str]:
    """Diffusers pipeline folders under ``models/diffusers`` (those holding a model_index.json)."""
    out = set()
    for base in search_paths("diffusers"):
        for root, dirs, files in os.walk(base, followlinks=True):
            if "model_index.json" in files:
                out.add(os.path.relpath(root, base))
                dirs.clear()  # the pipeline's own subfolders are not pipelines
    return sorted(out)


def encoder_choices() -> tuple[list[str], list[str]]:
    """(encoders, base folders) under ``models/megastyle``: folders with a config.json are both an encoder
    (megastyle's or a Hugging Face SigLIP/CLIP folder) and a possible base; weight files outside such folders
    are official state dicts (``megastyle_encoder.pth``)."""
    folders, weights = set(), set()
    for base in search_paths(ENCODER_FOLDER):
        for root, dirs, files in os.walk(base, followlinks=True):
            relative = os.path.relpath(root, base)
            if "config.json" in files and relative != ".":
                folders.add(relative)
                dirs.clear()
                continue
            for name in files:
                if name.lower().endswith(ENCODER_WEIGHT_SUFFIXES):
                    weights.add(os.path.normpath(os.path.join(relative, name)))
    return sorted(weights) + sorted(folders), sorted(folders)


def resolve(value: str, kind: str) -> Path:
    """A node's model input → a path: an absolute path as it is; a name found in ComfyUI's ``kind`` folders
    there; anything else as a path relative to the working directory (outside ComfyUI)."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    for base in search_paths(kind):
        candidate = base / value
        if candidate.exists():
            return candidate
    return path


def path_input(choices: list[str], default: str, tooltip: str, *, optional: bool = False) -> tuple:
    """A model input: a list of ComfyUI's model names inside ComfyUI, a path to type outside it."""
    if folder_paths() is not None:
        names = [NONE, *choices] if optional else choices
        return (names, {"default": NONE if optional else (names[0] if names else ""), "tooltip": tooltip})
    return ("STRING", {"default": "" if optional else default, "tooltip": tooltip})


def is_unset(value: str | None) -> bool:
    """An optional model input left empty ('' outside ComfyUI, 'none' inside)."""
    return value is None or value.strip() in ("", NONE)


def resolve_device(name: str) -> str:
    """'auto' → ComfyUI's device inside ComfyUI, else megastyle's choice (cuda when available)."""
    if name == "auto":
        try:
            import comfy.model_management as management
        except ImportError:
            pass
        else:
            return str(management.get_torch_device())
    from megastyle.devices import resolve_device as megastyle_device

    return megastyle_device(name)


@contextmanager
def ordinary_tensors() -> Iterator[None]:
    """Leave ComfyUI's ``torch.inference_mode()`` while models are loaded or changed.

    ComfyUI runs nodes in inference mode, where new tensors are inference tensors: a model loaded or given a
    LoRA there would differ from the one megastyle's commands hold (some kernels pick another path for
    them, moving scores in the 8th digit) and could not be changed outside inference mode later.
    """
    import torch

    with torch.inference_mode(False):
        yield


def step_callback(total: int) -> Callable[..., dict[str, Any]]:
    """A ``callback_on_step_end`` that advances ComfyUI's progress bar and honours its Cancel button."""
    try:
        from comfy.utils import ProgressBar
    except ImportError:
        bar = None
    else:
        bar = ProgressBar(total)
    try:
        from comfy.model_management import throw_exception_if_processing_interrupted as check
    except ImportError:
        check = None

    def on_step_end(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        if check is not None:
            check()
        if bar is not None:
            bar.update(1)
        return {}

    return on_step_end


# ----- the values that travel between nodes ------------------------------------------------------
@dataclass(frozen=True)
class LoraSetting:
    """The MegaStyle LoRA a pipe carries: its file and strength."""

    path: Path
    strength: float


@dataclass(frozen=True)
class MegaStylePipe:
    """``MEGASTYLE_PIPE``: a loaded ``MegaStyleFluxPipeline`` and the LoRA it should run with.

    Nodes never change what a pipe means: the LoRA node returns a new pipe over the same loaded model, and
    ``ready()`` puts exactly that pipe's LoRA state on the model before it runs (one adapter at the pipe's
    strength, or none), so re-running a node or branching a graph never stacks a LoRA.
    """

    pipeline: Any
    source: str
    lora: LoraSetting | None = None

    def ready(self) -> Any:
        """The pipeline with this pipe's LoRA (and no other MegaStyle LoRA) on its transformer."""
        from megastyle.transfer.lora import use_lora

        with ordinary_tensors():
            if self.lora is None:
                use_lora(self.pipeline, None)
            else:
                use_lora(self.pipeline, self.lora.path, scale=self.lora.strength)
        return self.pipeline

    def __repr__(self) -> str:
        lora = f", LoRA {self.lora.path.name} × {self.lora.strength:g}" if self.lora else ""
        return f"MegaStylePipe({self.source}{lora})"


@dataclass(frozen=True)
class MegaStyleReference:
    """``MEGASTYLE_REFERENCE``: style images and their clean reference latents for one target size.

    ``tokens`` are what ``MegaStyleFluxPipeline.encode_reference`` returns for ``images`` at
    ``height × width`` with ``resize_mode`` (packed, in the VAE's dtype, on the CPU).
    """

    images: tuple[Any, ...]
    tokens: Any
    height: int
    width: int
    resize_mode: str

    def __repr__(self) -> str:
        return f"MegaStyleReference({len(self.images)} image(s) for {self.width}x{self.height}, {self.resize_mode})"


# ----- ComfyUI tensors ↔ images ------------------------------------------------------------------
def to_pil(image: Any) -> list[Any]:
    """ComfyUI ``IMAGE`` (B×H×W×C float in [0, 1]) → B RGB PIL images (8-bit, rounded)."""
    import numpy as np
    from PIL import Image

    if image.ndim == 3:
        image = image[None]
    if image.ndim != 4 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an IMAGE of shape B×H×W×C (C = 1, 3 or 4), got {tuple(image.shape)}")
    array = (image.detach().float().cpu().clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return [Image.fromarray(np.ascontiguousarray(a[..., :3]), "RGB") for a in array]


def to_image(pixels: Any) -> Any:
    """Pipeline images as a B×C×H×W tensor in [0, 1] → ComfyUI ``IMAGE`` (B×H×W×C float32 on the CPU)."""
    return pixels.detach().permute(0, 2, 3, 1).float().cpu().contiguous()


def check_size(pipeline: Any, height: int, width: int) -> None:
    """Refuse a size that does not pack into FLUX tokens (a multiple of 2 × the VAE scale factor)."""
    multiple = 2 * int(pipeline.vae_scale_factor)
    for name, value in (("height", height), ("width", width)):
        if value % multiple:
            raise ValueError(f"{name} {value} must be a multiple of {multiple} (2 × the VAE scale factor)")


def cpu_generator(seed: int) -> Any:
    """The batch's noise generator: one CPU generator for the whole batch, as ComfyUI's samplers draw noise
    (so a seed gives the same images on every device)."""
    import torch

    return torch.Generator("cpu").manual_seed(int(seed))
