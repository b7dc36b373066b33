"""Small deterministic test images."""

from __future__ import annotations

import numpy as np
from PIL import Image


def random_images(n: int, size: tuple[int, int] = (32, 32), seed: int = 0) -> list[Image.Image]:
    """``n`` RGB noise images of ``size`` (width, height), identical for the same ``seed``."""
    rng = np.random.default_rng(seed)
    width, height = size
    return [
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB") for _ in range(n)
    ]
