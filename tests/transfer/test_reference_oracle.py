"""The reference latents against the formula, computed here: pack((vae.encode(x).mean − shift) · scale).

``x`` is the image as a [-1, 1] tensor at the target size; packing folds each 2×2 latent patch into one
token of 4·C channels, patches in row-major order, channels outermost (FLUX's layout).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from megastyle.testing import tiny_model_dir


def _pack_by_hand(latents: torch.Tensor) -> torch.Tensor:
    batch, channels, height, width = latents.shape
    tokens = []
    for row in range(0, height, 2):
        for col in range(0, width, 2):
            patch = latents[:, :, row : row + 2, col : col + 2]  # (B, C, 2, 2)
            tokens.append(patch.reshape(batch, channels * 4))  # c, then dy, then dx
    return torch.stack(tokens, dim=1)


@pytest.mark.parametrize("size", [16, 32])
def test_reference_latents_follow_the_formula(size: int) -> None:
    from megastyle.transfer.pipeline import MegaStyleFluxPipeline

    pipe = MegaStyleFluxPipeline.from_pretrained(tiny_model_dir("flux"), local_files_only=True)
    vae = pipe.vae
    assert vae.config.shift_factor != 0 and vae.config.scaling_factor != 1  # both matter in this test
    rng = np.random.default_rng(size)
    image = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    x = torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1)[None] / 127.5 - 1.0
    with torch.no_grad():
        mean = vae.encode(x).latent_dist.mean
        expected = _pack_by_hand((mean - vae.config.shift_factor) * vae.config.scaling_factor)
        ours = pipe.encode_reference(
            image, size, size, dtype=torch.float32, device="cpu", resize_mode="default"
        )
    assert ours.shape == expected.shape == (1, (size // 4) ** 2, 4 * vae.config.latent_channels)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
