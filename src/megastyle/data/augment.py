"""Seeded, style-preserving augmentation: a random crop then a horizontal flip.

No colour jitter, blur or grayscale: colour and texture *are* the style. Each item's augmentation
is drawn from its own seed, so a batch is a pure function of ``(seed, epoch, batch)`` whatever
process decodes it. Shared by the encoder trainer and the FLUX LoRA trainer's references.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class AugmentConfig:
    """A random crop then horizontal flip with ``flip_p``.

    ``crop = "resized"``: the usual random resized crop (area share ``crop_scale``, aspect ``crop_ratio``),
    later resized to the input as a whole. ``crop = "native"`` (for multi-crop preprocessing): a square
    of side ``native_size`` × a log-uniform factor in ``native_zoom``, resized to ``native_size``² — the
    texture keeps (about) the scale the embedding's grid crops see.
    """

    crop_scale: tuple[float, float] = (0.8, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    crop: Literal["resized", "native"] = "resized"
    native_size: int = 64
    native_zoom: tuple[float, float] = (0.8, 1.25)


def _native_crop(image: Image.Image, config: AugmentConfig, rng: np.random.Generator) -> Image.Image:
    width, height = image.size
    log_zoom = (math.log(config.native_zoom[0]), math.log(config.native_zoom[1]))
    side = min(width, height, round(config.native_size * math.exp(rng.uniform(*log_zoom))))
    left = int(rng.integers(0, width - side + 1))
    top = int(rng.integers(0, height - side + 1))
    crop = image.crop((left, top, left + side, top + side))
    if side != config.native_size:
        crop = crop.resize((config.native_size, config.native_size), resample=Image.Resampling.BICUBIC)
    return crop


def augment_image(image: Image.Image, config: AugmentConfig, seed: int) -> Image.Image:
    """The crop and flip drawn from ``seed`` (same seed → same augmentation)."""
    rng = np.random.default_rng(seed)
    if config.crop == "native":
        image = _native_crop(image, config, rng)
        if rng.uniform() < config.flip_p:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return image
    width, height = image.size
    area = width * height
    box = (0, 0, width, height)
    log_ratio = (math.log(config.crop_ratio[0]), math.log(config.crop_ratio[1]))
    for _ in range(10):  # rejection sampling as in the usual RandomResizedCrop
        target = area * rng.uniform(*config.crop_scale)
        ratio = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * ratio))
        h = round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            left = int(rng.integers(0, width - w + 1))
            top = int(rng.integers(0, height - h + 1))
            box = (left, top, left + w, top + h)
            break
    image = image.crop(box)
    if rng.uniform() < config.flip_p:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return image
