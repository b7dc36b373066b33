"""Image preprocessing for style encoders, in PIL + torch so it runs inside training dataloaders too.

Mirrors the Hugging Face image processors of the towers (PIL flavour): SigLIP squashes the image to
``image_size``² (bicubic, no crop) and normalises with mean = std = 0.5; CLIP resizes the shortest side
to ``resize_size`` (bicubic), centre-crops ``image_size``² and normalises with the OpenAI CLIP statistics.

Multi-crop (``crop_grid`` = n ≥ 1, off by default; the quickstart's tiny tower uses it): instead of
downsampling the whole image to ``image_size``² — which averages fine texture away at small input
sizes — the image keeps its own resolution (or is scaled to ``crop_source_size`` on its short side)
and ``image_size``² crops are taken from it: an n×n grid of evenly spaced crops at embedding time (the
embedding is the normalised mean of the crops' embeddings), one centre crop as the single view, and
a random one per image in training (``data.AugmentConfig(crop="native")``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from megastyle.data import to_rgb

ResizeMode = Literal["squash", "shortest_edge_crop"]

SIGLIP_MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
SIGLIP_STD: tuple[float, float, float] = (0.5, 0.5, 0.5)
CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)

_RESAMPLE: dict[str, Image.Resampling] = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
# PIL's integer codes, as HF preprocessor_config.json files store them.
_RESAMPLE_BY_CODE: dict[int, str] = {int(v): k for k, v in _RESAMPLE.items()}


class PreprocessConfig(BaseModel):
    """How a PIL image becomes the tower's ``pixel_values``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_size: int = Field(ge=1, description="Side of the square model input.")
    resize_mode: ResizeMode = Field(description="'squash' (SigLIP) or 'shortest_edge_crop' (CLIP).")
    resize_size: int | None = Field(None, ge=1, description="Shortest side before cropping (CLIP only).")
    image_mean: tuple[float, float, float] = SIGLIP_MEAN
    image_std: tuple[float, float, float] = SIGLIP_STD
    resample: Literal["nearest", "bilinear", "bicubic", "lanczos"] = "bicubic"
    crop_grid: int = Field(
        0,
        ge=0,
        description="0: the whole image is resized to one input (the towers' standard). n ≥ 1: n×n "
        "image_size² crops at the image's own resolution, embedded separately and averaged.",
    )
    crop_source_size: int | None = Field(
        None, ge=1, description="With crop_grid: scale the short side to this before cropping (None: native)."
    )
    # Multi-crop has no HF image-processor equivalent: ``to_hf_processor_config`` describes one view only.

    @classmethod
    def for_tower(cls, tower: str, image_size: int) -> PreprocessConfig:
        """The tower's standard preprocessing at ``image_size``."""
        if tower == "siglip":
            return cls(
                image_size=image_size, resize_mode="squash", image_mean=SIGLIP_MEAN, image_std=SIGLIP_STD
            )
        if tower == "clip":
            return cls(
                image_size=image_size,
                resize_mode="shortest_edge_crop",
                resize_size=image_size,
                image_mean=CLIP_MEAN,
                image_std=CLIP_STD,
            )
        raise ValueError(f"unknown tower {tower!r}; expected 'siglip' or 'clip'")

    @classmethod
    def from_hf_processor_config(cls, data: dict[str, Any], tower: str, image_size: int) -> PreprocessConfig:
        """Read an HF ``preprocessor_config.json`` dict; fields it lacks take the tower's defaults."""
        base = cls.for_tower(tower, image_size)
        size = data.get("size") or {}
        crop = data.get("crop_size") or {}
        resample = data.get("resample")
        fields: dict[str, Any] = base.model_dump()
        if isinstance(resample, int) and resample in _RESAMPLE_BY_CODE:
            fields["resample"] = _RESAMPLE_BY_CODE[resample]
        if data.get("image_mean") is not None:
            fields["image_mean"] = tuple(data["image_mean"])
        if data.get("image_std") is not None:
            fields["image_std"] = tuple(data["image_std"])
        if isinstance(size, int):  # very old processor configs store a bare int
            size = {"shortest_edge": size}
        if "shortest_edge" in size and data.get("do_center_crop", True):
            fields["resize_mode"] = "shortest_edge_crop"
            fields["resize_size"] = int(size["shortest_edge"])
            fields["image_size"] = (
                int(crop.get("height", image_size)) if isinstance(crop, dict) else int(crop)
            )
        elif "height" in size:
            fields["resize_mode"] = "squash"
            fields["resize_size"] = None
            fields["image_size"] = int(size["height"])
        return cls(**fields)

    def to_hf_processor_config(self, tower: str) -> dict[str, Any]:
        """The equivalent HF ``preprocessor_config.json`` dict (so HF users preprocess identically)."""
        resample = int(_RESAMPLE[self.resample])
        common = {
            "do_resize": True,
            "resample": resample,
            "do_rescale": True,
            "rescale_factor": 1 / 255,
            "do_normalize": True,
            "image_mean": list(self.image_mean),
            "image_std": list(self.image_std),
            "do_convert_rgb": True,
        }
        if self.resize_mode == "squash":
            return {
                **common,
                "image_processor_type": "SiglipImageProcessor" if tower == "siglip" else "CLIPImageProcessor",
                "size": {"height": self.image_size, "width": self.image_size},
                "do_center_crop": False,
            }
        return {
            **common,
            "image_processor_type": "CLIPImageProcessor",
            "size": {"shortest_edge": self.resize_size or self.image_size},
            "do_center_crop": True,
            "crop_size": {"height": self.image_size, "width": self.image_size},
        }


def read_hf_processor_config(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The folder's image-processor settings as a dict, or None when it has none.

    transformers 4 writes ``preprocessor_config.json``; transformers 5 processors write
    ``processor_config.json`` with the image processor's fields nested under ``image_processor``.
    """
    for name in ("preprocessor_config.json", "processor_config.json"):
        path = Path(folder) / name
        if not path.is_file():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            nested = data.get("image_processor")
            return nested if isinstance(nested, dict) else data
    return None


def _shortest_edge_size(width: int, height: int, shortest: int) -> tuple[int, int]:
    # Same rounding as HF's get_resize_output_image_size(default_to_square=False): int() truncation.
    if width <= height:
        return shortest, int(shortest * height / width)
    return int(shortest * width / height), shortest


def _center_crop(image: Image.Image, side: int) -> Image.Image:
    # HF rounds the top/left offset as int((dim - crop) / 2 + 0.5) and pads when the image is smaller.
    width, height = image.size
    if width < side or height < side:
        canvas = Image.new("RGB", (max(width, side), max(height, side)))
        canvas.paste(image, ((canvas.width - width) // 2, (canvas.height - height) // 2))
        image, width, height = canvas, canvas.width, canvas.height
    top = int((height - side) / 2 + 0.5)
    left = int((width - side) / 2 + 0.5)
    return image.crop((left, top, left + side, top + side))


class ImagePreprocessor:
    """Picklable ``PIL image → (3, H, W) float tensor`` transform, with an optional augmentation first."""

    def __init__(
        self, config: PreprocessConfig, augment: Callable[[Image.Image], Image.Image] | None = None
    ) -> None:
        self.config = config
        self.augment = augment
        self._mean = torch.tensor(config.image_mean, dtype=torch.float32).view(3, 1, 1)
        self._std = torch.tensor(config.image_std, dtype=torch.float32).view(3, 1, 1)

    def crop_source(self, image: Image.Image) -> Image.Image:
        """Multi-crop mode: the image crops are cut from (short side at ``crop_source_size``, ≥ image_size)."""
        cfg = self.config
        shortest = min(image.size)
        target = max(cfg.crop_source_size or shortest, cfg.image_size)
        if target == shortest:
            return image
        return image.resize(_shortest_edge_size(*image.size, target), resample=_RESAMPLE[cfg.resample])

    def resize(self, image: Image.Image) -> Image.Image:
        """Resize (and crop) an RGB image to the model's input size."""
        cfg = self.config
        resample = _RESAMPLE[cfg.resample]
        if cfg.crop_grid:  # the crop source is already made (``__call__``): centre crop, identity if exact
            return _center_crop(image, cfg.image_size)
        if cfg.resize_mode == "squash":
            return image.resize((cfg.image_size, cfg.image_size), resample=resample)
        width, height = _shortest_edge_size(*image.size, cfg.resize_size or cfg.image_size)
        return _center_crop(image.resize((width, height), resample=resample), cfg.image_size)

    def to_tensor(self, image: Image.Image) -> torch.Tensor:
        """Rescale to [0, 1] and normalise a resized RGB image into a (3, H, W) float32 tensor."""
        array = np.asarray(image, dtype=np.float32) / 255.0
        tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
        return (tensor - self._mean) / self._std

    def __call__(
        self, image: Image.Image, augment: Callable[[Image.Image], Image.Image] | None = None
    ) -> torch.Tensor:
        """Convert to RGB, augment (``augment``, else the configured one), resize and normalise one image."""
        image = to_rgb(image)
        if self.config.crop_grid:
            image = self.crop_source(image)  # the augmentation crops at the resolution the grid sees
        augment = augment or self.augment
        if augment is not None:
            image = to_rgb(augment(image))
        return self.to_tensor(self.resize(image))

    def crop_boxes(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        """The ``crop_grid``² evenly spaced ``image_size``² boxes (row-major) over a crop source."""
        n, side = self.config.crop_grid, self.config.image_size

        def starts(length: int) -> list[int]:
            if n == 1:
                return [int((length - side) / 2 + 0.5)]  # as _center_crop, so the grid of 1 = __call__
            return [round(i * (length - side) / (n - 1)) for i in range(n)]

        return [(x, y, x + side, y + side) for y in starts(height) for x in starts(width)]

    def views(self, image: Image.Image) -> torch.Tensor:
        """(v, 3, H, W): the grid crops in multi-crop mode, else the one standard input (v = 1)."""
        if not self.config.crop_grid:
            return self(image)[None]
        source = self.crop_source(to_rgb(image))
        return torch.stack([self.to_tensor(source.crop(box)) for box in self.crop_boxes(*source.size)])

    def batch(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Stack preprocessed images into an (n, 3, H, W) tensor."""
        if not images:
            size = self.config.image_size
            return torch.empty((0, 3, size, size), dtype=torch.float32)
        return torch.stack([self(image) for image in images])

    def __repr__(self) -> str:
        return f"ImagePreprocessor({self.config!r}, augment={self.augment!r})"
